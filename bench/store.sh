#!/usr/bin/env bash
# The layer store over a series of versions: a base image FROM scratch of BASE_MB (half random
# bytes, half log-like text), then VERSIONS versions each adding a fresh LAYER_MB layer of random
# bytes on top of the base (STACKED=1: on top of the previous version), built with the legacy
# builder. In one run:
# - each version: `toolbox update-image --store` into one artifacts directory beside
#   `docker save -o` of the same image (alternating which goes first), the bytes the update adds
#   to the directory and the bytes it writes against the new layer's compressed size + 1 MiB,
#   and the peak RSS;
# - storage: the directory after every version against a real registry (Debian's
#   docker-registry on a loopback port) holding the same versions (`docker push`), and against
#   `update-image --compress` of every version (full ZIP archives, as today);
# - load: `toolbox load` of the last version's .ref against `docker load -i` of its `docker save`
#   tar, each into an engine holding none of the versions (ROUNDS rounds, alternating;
#   medians), and the peak RSS;
# - thin load: the same, with the engine holding the version before it (the base layer): what
#   `toolbox load` sends (`--json`'s `sent`) against the new layer + 1 MiB, and its time against
#   `docker load -i` of the whole tar;
# - delta: `toolbox export` of the last version `--since` the one before (a layout tar), its
#   size against the new blobs' bytes + 1 MiB, and the time of `toolbox import` of it into a
#   store holding the version before (imported from a bundle), then `toolbox load` of the last
#   version from there, with its ID checked.
# Targets: update-image --store <= 1.1x docker save -o (versions after the first); the store
# <= 1.05x the registry; toolbox load <= 1.15x docker load -i; peak RSS <= 64 MiB; a thin load
# <= 0.1x docker load -i, sending <= the new layer + 1 MiB; the delta <= the new blobs' bytes
# + 1 MiB.
#
# The engine: `scripts/engine start $TOOLBOX_ENGINE` (20.10, 26-classic or 26-containerd; default
# 26-containerd). Sizes: BASE_MB (200), LAYER_MB (8), VERSIONS (10); ROUNDS (3) of load.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TOOLBOX_BIN:-target/release/toolbox}
[[ -x $bin ]] || cargo build --release
bin=$(realpath "$bin")
base_mb=${BASE_MB:-200}
layer_mb=${LAYER_MB:-8}
versions=${VERSIONS:-10}
rounds=${ROUNDS:-3}
stacked=${STACKED:-0}
engine=${TOOLBOX_ENGINE:-26-containerd}
((versions >= 2)) || { echo "store.sh: VERSIONS must be at least 2" >&2; exit 2; }

DOCKER_HOST=$(scripts/engine start "$engine")
export DOCKER_HOST
if [[ ! -x /usr/bin/time ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
registry_bin=$(command -v docker-registry || true)
[[ -n $registry_bin ]] || { echo "store.sh: docker-registry is missing (scripts/engine start installs it)" >&2; exit 1; }

dir=$PWD/target/bench/store
repo=storebench
registry_pid=
port=

images() { # every tag of the benchmark's images in the engine
    docker image ls --format '{{.Repository}} {{.Tag}}' |
        awk -v r="$repo" '$1 == r || $1 ~ ("/" r "$") { print $1 ":" $2 }'
}
cleanup() {
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    local tags
    mapfile -t tags < <(images 2>/dev/null)
    ((${#tags[@]} == 0)) || docker rmi -f "${tags[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
rm -rf "$dir" && mkdir -p "$dir"
# Away from the checkout's config/toolbox.yaml.
cd "$dir"

# The seconds, peak RSS (KiB) and bytes written to storage (the kernel's count of the pages it
# dirtied) of a command: sets secs, kib and io.
measure() {
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f '%M %O' -o "$dir/rusage" "$@" >/dev/null
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc)
    read -r kib io < <(tail -n 1 "$dir/rusage")
    io=$((io * 512))
}
# measure, keeping the command's stdout in $dir/stdout.
measure_out() {
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f '%M %O' -o "$dir/rusage" "$@" >"$dir/stdout"
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc)
    read -r kib io < <(tail -n 1 "$dir/rusage")
    io=$((io * 512))
}
bytes() { du -sb "$1" | cut -f1; }
blobs() { # the blobs of a layer store: digest and size, one a line
    [[ ! -d $1/blobs/sha256 ]] || find "$1/blobs/sha256" -type f -printf '%f %s\n' | sort
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { echo "scale=3; $1 / $2" | bc | sed 's/^\./0./'; }
mib() { echo "scale=1; $1 / 1048576" | bc | sed 's/^\./0./'; }

echo "store.sh: engine $engine (dockerd $(docker version --format '{{.Server.Version}}')), $(nproc) cores;" \
    "base ${base_mb} MB, $versions versions of ${layer_mb} MB" >&2

# The images.
python3 - "$base_mb" "$layer_mb" "$versions" <<'PY'
import os, sys
base_mb, layer_mb, versions = map(int, sys.argv[1:])
os.makedirs("ctx/base")
with open("ctx/base/random.bin", "wb") as f:
    for _ in range(base_mb // 2):
        f.write(os.urandom(1 << 20))
methods = [b"GET", b"POST", b"PUT", b"DELETE"]
paths = [b"/api/v1/items", b"/api/v1/users", b"/static/app.js", b"/health", b"/login"]
users = [b"alice", b"bob", b"carol", b"dave", b"-"]
with open("ctx/base/app.log", "wb") as f:
    left, i = (base_mb - base_mb // 2) << 20, 0
    while left > 0:
        chunk = b"".join(b"2026-12-%02d %08d %s %s user=%s status=%d took=%dms\n" % (
            j % 28 + 1, j, methods[j % 4], paths[j * 7 % 5], users[j * 3 % 5],
            (200, 200, 304, 404, 500)[j * 11 % 5], j * 7919 % 1009) for j in range(i, i + 20000))
        f.write(chunk[:left])
        left -= len(chunk)
        i += 20000
for n in range(1, versions + 1):
    os.makedirs(f"ctx/v{n}")
    with open(f"ctx/v{n}/app.bin", "wb") as f:
        for _ in range(layer_mb):
            f.write(os.urandom(1 << 20))
PY
printf 'FROM scratch\nCOPY random.bin app.log /data/\n' >ctx/base/Dockerfile
build() { # build TAG CONTEXT, quietly (the legacy builder's deprecation notice too)
    DOCKER_BUILDKIT=0 docker build -q -t "$1" "$2" >/dev/null 2>build.log || { cat build.log >&2; exit 1; }
}
build "$repo:base" ctx/base
from=$repo:base
for n in $(seq 1 "$versions"); do
    printf 'FROM %s\nCOPY app.bin /app/app.bin\n' "$from" >"ctx/v$n/Dockerfile"
    build "$repo:1.0.$n" "ctx/v$n"
    if [[ $stacked == 1 ]]; then from=$repo:1.0.$n; fi
done
rm -rf ctx

# Each version into the store, beside docker save.
mkdir store
update_s=() save_s=() update_kib=() update_io=() written=() layer=() tar_bytes=() new_blobs=()
for n in $(seq 1 "$versions"); do
    before=$(bytes store)
    blobs store >blobs.before
    for turn in 1 2; do
        if (( (n + turn) % 2 == 0 )); then
            measure "$bin" --basedir store update-image "$repo" --version "1.0.$n" --store
            update_s[n]=$secs update_kib[n]=$kib update_io[n]=$io
        else
            rm -f save.tar
            measure docker save -o save.tar "$repo:1.0.$n"
            save_s[n]=$secs
            tar_bytes[n]=$(stat -c %s save.tar)
        fi
    done
    written[n]=$(( $(bytes store) - before ))
    # The new layer: the largest blob the update added.
    blobs store | comm -13 blobs.before - >blobs.new
    layer[n]=$(sort -k2,2n blobs.new | tail -n 1 | cut -d' ' -f2)
    new_blobs[n]=$(awk '{ s += $2 } END { print s + 0 }' blobs.new)
done
ls store/"$repo"_1.0."$versions"_*.ref >/dev/null
store_bytes=$(bytes store)
"$bin" --basedir store df --json >df.json
df_on_disk=$(jq .on_disk df.json)
df_full=$(jq .as_full_copies df.json)

# The same versions as full ZIP archives (update-image --compress), as today.
mkdir full
compress_s=()
for n in $(seq 1 "$versions"); do
    measure "$bin" --basedir full update-image "$repo" --version "1.0.$n" --compress
    compress_s[n]=$secs
done
full_bytes=$(bytes full)
rm -rf full

# The same versions in a registry.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p registry/storage
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/registry/storage" "$port" >registry/config.yml
"$registry_bin" serve registry/config.yml >/dev/null 2>registry/registry.log &
registry_pid=$!
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
    kill -0 "$registry_pid" 2>/dev/null || { cat registry/registry.log >&2; exit 1; }
    sleep 0.1
done
for n in $(seq 1 "$versions"); do
    docker tag "$repo:1.0.$n" "127.0.0.1:$port/$repo:1.0.$n"
    docker push "127.0.0.1:$port/$repo:1.0.$n" >/dev/null
    docker rmi "127.0.0.1:$port/$repo:1.0.$n" >/dev/null
done
kill "$registry_pid" && wait "$registry_pid" 2>/dev/null || true
registry_pid=
registry_bytes=$(bytes registry/storage)

# Load of the last version into an engine that holds nothing of it (every version removed):
# toolbox from the store, docker from a docker save tar.
last=$repo:1.0.$versions
rm -f save.tar
docker save -o save.tar "$last"
load_s=() dload_s=() load_kib=()
for r in $(seq 1 "$rounds"); do
    for turn in 1 2; do
        mapfile -t tags < <(images)
        docker rmi "${tags[@]}" >/dev/null
        if (( (r + turn) % 2 == 0 )); then
            measure "$bin" --basedir store load "$last"
            load_s[r]=$secs load_kib[r]=$kib
        else
            measure docker load -i save.tar
            dload_s[r]=$secs
        fi
    done
done

# Thin load of the last version, the engine holding the one before it (and so the base layer):
# toolbox sends the new layer; docker load -i sends the whole tar (which a classic store then
# reads past the layers it has).
"$bin" --basedir store load "$repo:1.0.$((versions - 1))" >/dev/null
thin_s=() thin_sent=() thin_total=() tdload_s=()
for r in $(seq 1 "$rounds"); do
    for turn in 1 2; do
        docker rmi "$last" >/dev/null
        if (( (r + turn) % 2 == 0 )); then
            measure_out "$bin" --basedir store load "$last" --json
            thin_s[r]=$secs
            thin_sent[r]=$(jq .sent "$dir/stdout")
            thin_total[r]=$(jq .total "$dir/stdout")
        else
            measure docker load -i save.tar
            tdload_s[r]=$secs
        fi
    done
done
rm -f save.tar

# A delta of the last version against the one before, imported into a store holding that one.
prev=$repo:1.0.$((versions - 1))
last_id=$(docker image inspect --format '{{.Id}}' "$last")
measure "$bin" --basedir store export "$last" --since "$prev" -o delta.tar
export_s=$secs export_kib=$kib
delta_bytes=$(stat -c %s delta.tar)
"$bin" --basedir store export "$prev" -o prev.tar >/dev/null
mkdir host
"$bin" --basedir host import prev.tar >/dev/null
measure "$bin" --basedir host import delta.tar
import_s=$secs import_kib=$kib
docker rmi "$last" >/dev/null
"$bin" --basedir host load "$last" >/dev/null
[[ $(docker image inspect --format '{{.Id}}' "$last") == "$last_id" ]] ||
    { echo "store.sh: the imported delta did not load as $last_id" >&2; exit 1; }
rm -rf host prev.tar delta.tar

# Results.
ratios=()
printf '\n| version | update-image --store (s) | docker save -o (s) | ratio | added to the directory (B) | written (B) | new layer (B) | new layer + 1 MiB (B) | peak RSS (KiB) |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
for n in $(seq 1 "$versions"); do
    r=$(ratio "${update_s[n]}" "${save_s[n]}")
    ((n == 1)) || ratios+=("$r")
    printf '| 1.0.%s | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n' "$n" "${update_s[n]}" "${save_s[n]}" "$r" \
        "${written[n]}" "${update_io[n]}" "${layer[n]}" $(( layer[n] + 1048576 )) "${update_kib[n]}"
done
over=0
for n in $(seq 2 "$versions"); do
    (( written[n] <= layer[n] + 1048576 && update_io[n] <= layer[n] + 1048576 )) || over=$((over + 1))
done
peak_update=$(printf '%s\n' "${update_kib[@]}" | sort -n | tail -n 1)
peak_load=$(printf '%s\n' "${load_kib[@]}" | sort -n | tail -n 1)
printf '\n| load of 1.0.%s | median (s) | runs (s) |\n| --- | --- | --- |\n' "$versions"
printf '| toolbox load (.ref) | %.2f | %s |\n' "$(median "${load_s[@]}")" "$(printf '%.2f ' "${load_s[@]}")"
printf '| docker load -i (tar) | %.2f | %s |\n' "$(median "${dload_s[@]}")" "$(printf '%.2f ' "${dload_s[@]}")"
printf '\n| thin load of 1.0.%s (the engine holds 1.0.%s) | median (s) | runs (s) | sent (B) | whole tar (B) |\n| --- | --- | --- | --- | --- |\n' "$versions" "$((versions - 1))"
printf '| toolbox load (.ref) | %.2f | %s | %s | %s |\n' "$(median "${thin_s[@]}")" "$(printf '%.2f ' "${thin_s[@]}")" "$(printf '%s\n' "${thin_sent[@]}" | sort -n | tail -n 1)" "${thin_total[1]}"
printf '| docker load -i (whole tar) | %.2f | %s | | |\n' "$(median "${tdload_s[@]}")" "$(printf '%.2f ' "${tdload_s[@]}")"
printf '\n| storage of %s versions | bytes | MiB |\n| --- | --- | --- |\n' "$versions"
printf '| layer store (du -sb) | %s | %s |\n' "$store_bytes" "$(mib "$store_bytes")"
printf '| registry (du -sb) | %s | %s |\n' "$registry_bytes" "$(mib "$registry_bytes")"
printf '| update-image --compress of each version (du -sb, ZIPs) | %s | %s |\n' "$full_bytes" "$(mib "$full_bytes")"
printf '| toolbox df: on_disk / as_full_copies | %s / %s | %s / %s |\n' "$df_on_disk" "$df_full" "$(mib "$df_on_disk")" "$(mib "$df_full")"
printf '| docker save tar of the last version | %s | %s |\n' "${tar_bytes[versions]}" "$(mib "${tar_bytes[versions]}")"
printf '\n| ratio | measured | target |\n| --- | --- | --- |\n'
printf '| update-image --store / docker save -o, versions 2-%s (median; range) | %.3f (%s-%s) | <= 1.1 |\n' "$versions" \
    "$(median "${ratios[@]}")" "$(printf '%s\n' "${ratios[@]}" | sort -g | head -n 1)" "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -n 1)"
printf '| updates adding or writing more than the new layer + 1 MiB, versions 2-%s | %s | 0 |\n' "$versions" "$over"
printf '| layer store / registry | %s | <= 1.05 |\n' "$(ratio "$store_bytes" "$registry_bytes")"
printf '| layer store / full ZIPs | %s | |\n' "$(ratio "$store_bytes" "$full_bytes")"
printf '| toolbox load / docker load -i (medians) | %s | <= 1.15 |\n' "$(ratio "$(median "${load_s[@]}")" "$(median "${dload_s[@]}")")"
printf '| thin load / docker load -i (medians) | %s | <= 0.1 |\n' "$(ratio "$(median "${thin_s[@]}")" "$(median "${tdload_s[@]}")")"
thin_max=$(printf '%s\n' "${thin_sent[@]}" | sort -n | tail -n 1)
printf '| thin load: sent / (new layer + 1 MiB) | %s (%s / %s) | <= 1 |\n' "$(ratio "$thin_max" $(( layer[versions] + 1048576 )))" "$thin_max" $(( layer[versions] + 1048576 ))
printf '| export --since 1.0.%s of 1.0.%s (B) / new blobs + 1 MiB (B) | %s / %s | <= 1 |\n' "$((versions - 1))" "$versions" \
    "$delta_bytes" $(( new_blobs[versions] + 1048576 ))
printf '| export / import of the delta (s); peak RSS (MiB) | %.2f / %.2f; %s / %s | |\n' "$export_s" "$import_s" \
    "$(mib $((export_kib * 1024)))" "$(mib $((import_kib * 1024)))"
printf '| peak RSS, update-image --store (MiB) | %s | <= 64 |\n' "$(mib $((peak_update * 1024)))"
printf '| peak RSS, load (MiB) | %s | <= 64 |\n' "$(mib $((peak_load * 1024)))"
printf '\nupdate-image --compress per version (s): %s\n' "$(printf '%.2f ' "${compress_s[@]}")"
