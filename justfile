# toolbox: `just demo` runs the main job, `just test` runs the tests. Both set up what they need.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install the system packages the tests and the demo use (when missing).
deps:
    scripts/install-deps

# Run every test: unit tests beside the code, end-to-end tests in tests/ (against a real engine,
# started under target/engine/ when none answers).
test: deps
    #!/usr/bin/env bash
    set -euo pipefail
    DOCKER_HOST=$(scripts/engine start)
    export DOCKER_HOST
    cargo test --all-targets

# Start the private Docker engine (when none answers) and print its DOCKER_HOST.
engine-start:
    scripts/engine start

# Stop the private Docker engine.
engine-stop:
    scripts/engine stop

# The fuzz targets (property tests of name parsing, archive reading and the latest rule) with many cases, for a
# bounded time; failures found are kept under proptest-regressions/ and replayed by `just test`.
fuzz cases="20000" seconds="600":
    PROPTEST_CASES={{cases}} timeout {{seconds}} cargo test --release --test properties --test latest_rule

# Formatting and lints, as CI expects them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# The main job: build the example image and keep it as a compressed archive in ./artifacts.
demo: deps
    cargo build --release
    scripts/demo

# Benchmarks (never timed assertions in tests): archive listing, then saving, compressing and
# loading a large image against docker save / zip / docker load (results in bench/RESULTS.md).
bench: deps
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    bench/latest.sh
    DOCKER_HOST=$(scripts/engine start)
    export DOCKER_HOST
    bench/image.py
