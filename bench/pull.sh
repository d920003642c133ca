#!/usr/bin/env bash
# Shipping only what changed, from a web server: an artifacts directory with a layer store
# holding N and N+1 (a BASE_MB base layer of random bytes shared by both, a fresh LAYER_MB layer
# each), served by Debian's nginx on a loopback port. In one run (ROUNDS rounds, medians):
# - `toolbox pull URL` of N into an empty store against `curl` of the same files (the .ref,
#   oci-layout and every blob N needs), one after the other;
# - `toolbox pull URL` of N+1 into a store holding N: the bytes it downloaded against the new
#   blobs' bytes + 1 MiB (the target), and its time against `curl` of only those blobs.
# No engine is needed: the images are made here as `docker save` tars and converted to `.ref`.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TOOLBOX_BIN:-target/release/toolbox}
[[ -x $bin ]] || cargo build --release
bin=$(realpath "$bin")
base_mb=${BASE_MB:-200}
layer_mb=${LAYER_MB:-8}
rounds=${ROUNDS:-3}
[[ -x /usr/sbin/nginx ]] || scripts/install-deps
command -v curl >/dev/null || scripts/install-deps

work=$PWD/target/bench/pull
rm -rf "$work"
mkdir -p "$work/server" "$work/nginx/tmp"
python3 - "$work/server" "$base_mb" "$layer_mb" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, base_mb, layer_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def layer(name, size, seed):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo(name); info.size = size; info.mtime = 1700000000
        t.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()
base = layer("base.bin", base_mb << 20, 1)
for i, version in enumerate(["1.0.0", "1.0.1"]):
    top = layer("top.bin", layer_mb << 20, 2 + i)
    layers = [base, top]
    diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
        "created": f"2024-01-0{i+1}T00:00:00Z", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cid = hashlib.sha256(config).hexdigest()
    members = [(f"{cid}.json", config)]
    names = []
    for l in layers:
        h = hashlib.sha256(l).hexdigest()
        members.append((f"{h}/layer.tar", l)); names.append(f"{h}/layer.tar")
    members.append(("manifest.json", json.dumps([{"Config": f"{cid}.json",
        "RepoTags": [f"shipbench:{version}"], "Layers": names}]).encode()))
    with tarfile.open(f"{out}/shipbench_{version}_{cid[:12]}.docker", "w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
PY
for f in "$work"/server/*.docker; do "$bin" convert "$f" --to ref >/dev/null; done
mapfile -t refs < <(ls "$work"/server/*.ref | sort)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
n="$work/nginx"
cat >"$n/nginx.conf" <<CONF
user root; worker_processes 1; daemon off; master_process off;
pid $n/nginx.pid; error_log $n/error.log;
events { worker_connections 64; }
http { default_type application/octet-stream; access_log off;
  client_body_temp_path $n/tmp; proxy_temp_path $n/tmp; fastcgi_temp_path $n/tmp;
  uwsgi_temp_path $n/tmp; scgi_temp_path $n/tmp;
  server { listen 127.0.0.1:$port; root $work/server; } }
CONF
/usr/sbin/nginx -c "$n/nginx.conf" -p "$n" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/oci-layout" && break; sleep 0.1; done
url=http://127.0.0.1:$port

# The blobs a .ref needs (the server's own files).
needed() { python3 - "$work/server" "$1" <<'PY'
import json, sys
root, ref = sys.argv[1], sys.argv[2]
d = json.load(open(ref))["digest"]
m = json.load(open(f"{root}/blobs/sha256/{d[7:]}"))
print(d[7:]); print(m["config"]["digest"][7:])
for l in m["layers"]: print(l["digest"][7:])
PY
}
mapfile -t need1 < <(needed "${refs[0]}")
mapfile -t need2 < <(needed "${refs[1]}")
new=()
for b in "${need2[@]}"; do [[ " ${need1[*]} " == *" $b "* ]] || new+=("$b"); done
new_bytes=0
for b in "${new[@]}"; do new_bytes=$((new_bytes + $(stat -c %s "$work/server/blobs/sha256/$b"))); done

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
t_full=() t_curl_full=() t_thin=() t_curl_thin=()
downloaded=0
for ((r = 1; r <= rounds; r++)); do
    rm -rf "$work/client" "$work/curl" && mkdir -p "$work/client/artifacts" "$work/curl"
    s=$(now)
    (cd "$work/client" && "$bin" pull "$url/$(basename "${refs[0]}")" >/dev/null)
    t_full+=("$(echo "$(now) - $s" | bc)")
    s=$(now)
    curl -sf -o "$work/curl/ref" "$url/$(basename "${refs[0]}")"
    curl -sf -o "$work/curl/oci-layout" "$url/oci-layout"
    for b in "${need1[@]}"; do curl -sf -o "$work/curl/$b" "$url/blobs/sha256/$b"; done
    t_curl_full+=("$(echo "$(now) - $s" | bc)")
    s=$(now)
    out=$(cd "$work/client" && "$bin" pull "$url/$(basename "${refs[1]}")" --json)
    t_thin+=("$(echo "$(now) - $s" | bc)")
    downloaded=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["downloaded"])' "$out")
    s=$(now)
    curl -sf -o "$work/curl/ref2" "$url/$(basename "${refs[1]}")"
    for b in "${new[@]}"; do curl -sf -o "$work/curl/$b" "$url/blobs/sha256/$b"; done
    t_curl_thin+=("$(echo "$(now) - $s" | bc)")
done
(cd "$work/client" && "$bin" verify >/dev/null)
full=$(printf '%s\n' "${t_full[@]}" | median)
curl_full=$(printf '%s\n' "${t_curl_full[@]}" | median)
thin=$(printf '%s\n' "${t_thin[@]}" | median)
curl_thin=$(printf '%s\n' "${t_curl_thin[@]}" | median)
limit=$((new_bytes + (1 << 20)))
echo "pull.sh: base ${base_mb} MiB, new layer ${layer_mb} MiB, ${rounds} rounds (medians)"
printf 'pull of N into an empty store: %.2f s; curl of the same files: %.2f s; ratio %.2f\n' \
    "$full" "$curl_full" "$(echo "$full / $curl_full" | bc -l)"
printf 'pull of N+1 into a store holding N: %.2f s; curl of the new blobs: %.2f s; ratio %.2f\n' \
    "$thin" "$curl_thin" "$(echo "$thin / $curl_thin" | bc -l)"
echo "pull of N+1 downloaded $downloaded bytes; the new blobs are $new_bytes bytes; target <= $limit: $([[ $downloaded -le $limit ]] && echo met || echo MISSED)"
