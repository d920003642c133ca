# toolbox: `just demo` runs the main job, `just test` runs the tests. Both set up what they need.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install the system packages the tests and the demo use (when missing).
deps:
    scripts/install-deps

# Run every test: unit tests beside the code, end-to-end tests in tests/.
test: deps
    cargo test --all-targets

# Formatting and lints, as CI expects them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Show the tool on a sample artifacts directory.
demo: deps
    cargo build --release
    scripts/demo

# Benchmarks (never timed assertions in tests); results are printed.
bench: deps
    cargo build --release
    bench/latest.sh
