#!/usr/bin/env bash
# Context preparation: a 2 GB build context whose node_modules (100,000 small files) is excluded
# by .dockerignore, built by `toolbox build` and by `docker build` (both with the legacy builder,
# which takes the whole context as a tar; BuildKit fetches only what COPY needs) on the same
# engine, alternating, three rounds each. The Dockerfile copies nothing, so what is measured is
# finding, packing and sending the context (and the engine receiving it).
# Target: toolbox no slower than docker.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TOOLBOX_BIN:-target/release/toolbox}
[[ -x $bin ]] || cargo build --release
: "${DOCKER_HOST:?set DOCKER_HOST (just bench does it)}"
dir=target/bench/context
if [[ ! -f $dir/.complete ]]; then
    rm -rf "$dir" && mkdir -p "$dir/data"
    echo "creating a 2 GB context with 100,000 excluded files in $dir" >&2
    for i in $(seq -w 1 20); do head -c 100M /dev/urandom >"$dir/data/blob$i"; done
    python3 - "$dir" <<'PY'
import os, sys
d = os.path.join(sys.argv[1], "node_modules")
for i in range(100_000):
    sub = os.path.join(d, f"pkg{i // 1000:03d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i}.js"), "w") as f:
        f.write("module.exports = 1;\n")
PY
    printf 'FROM scratch\nLABEL bench=context\n' >"$dir/Dockerfile"
    printf 'node_modules\n' >"$dir/.dockerignore"
    touch "$dir/.complete"
fi

image=toolbox-bench-context
now() { date +%s%N; }
toolbox_times=() docker_times=()
for round in 1 2 3; do
    start=$(now)
    "$bin" build "$image" --version t --context "$dir" --no-cache --builder legacy --progress none >/dev/null 2>&1
    toolbox_times+=("$(( ($(now) - start) / 1000000 ))")
    start=$(now)
    DOCKER_BUILDKIT=0 docker build -q --no-cache -t "$image:d" "$dir" >/dev/null 2>&1
    docker_times+=("$(( ($(now) - start) / 1000000 ))")
done
docker rmi "$image:t" "$image:d" >/dev/null 2>&1 || true
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
echo "$(nproc) cores; context 2 GB + 100,000 excluded files"
echo "toolbox build: $(median "${toolbox_times[@]}") ms (runs ${toolbox_times[*]})"
echo "docker build (legacy): $(median "${docker_times[@]}") ms (runs ${docker_times[*]})"
