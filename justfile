# toolbox: `just demo` runs the main job, `just test` runs the tests. Both set up what they need.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install the system packages the tests and the demo use (when missing).
deps:
    scripts/install-deps

# Run every test (unit, end-to-end against a real engine under target/engine/, properties); TOOLBOX_ENGINE=20.10|26-classic|26-containerd picks the engine (default 26-containerd).
test: deps
    #!/usr/bin/env bash
    set -euo pipefail
    DOCKER_HOST=$(scripts/engine start "${TOOLBOX_ENGINE:-26-containerd}")
    export DOCKER_HOST
    cargo test --all-targets

# Install the toolbox binary into ~/.cargo/bin (on the PATH with rustup).
install:
    cargo install --locked --path .

# Start the private Docker engine (when none answers) and print its DOCKER_HOST.
engine-start:
    scripts/engine start

# Stop the private Docker engine.
engine-stop:
    scripts/engine stop

# Fuzzing (release build): the property tests with `cases` cases, and `archives` mutated archives through the binary's readers (failing inputs under target/fuzz-failures/); the same `seed` makes the same archives.
fuzz cases="20000" archives="5000" seconds="3600" seed="":
    #!/usr/bin/env bash
    set -euo pipefail
    seed="{{seed}}"
    seed="${seed:-$(date +%s)}"
    echo "fuzz: TOOLBOX_FUZZ_SEED=$seed" >&2
    PROPTEST_CASES={{cases}} TOOLBOX_FUZZ_CASES={{archives}} TOOLBOX_FUZZ_SEED="$seed" \
        timeout {{seconds}} cargo test --release --no-fail-fast --test properties --test latest_rule --test fuzz_archives

# Formatting and lints, as CI expects them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# The main job: build the example image and keep it as a compressed archive in ./artifacts.
demo:
    cargo build --release --quiet
    scripts/demo

# Benchmarks: listing 100,000 archives; checked compress and decompress against the zstd and zip command lines; saving, compressing and loading a large image; the layer store over a series of versions against docker save, docker load and a registry; pull from a web server against curl; a 2 GB build context (bench/RESULTS.md).
bench: deps
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    bench/latest.sh
    bench/convert.sh
    DOCKER_HOST=$(scripts/engine start)
    export DOCKER_HOST
    bench/image.py
    bench/store.sh
    bench/pull.sh
    bench/context.sh
