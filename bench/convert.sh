#!/usr/bin/env bash
# compress and decompress of a ~900 MB image, each checked in full as it streams (the tar's
# structure, every digest, the image ID) and written atomically (fsync, rename), side by side
# with the zstd and zip command lines on the same tar (no check, no fsync): the ratio is what
# the checks and the durability cost. Also: verify alone, and extract of 5,000 files 2,000
# folders deep (linear in the entries at any depth).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TOOLBOX_BIN:-target/release/toolbox}
[[ -x $bin ]] || cargo build --release
bin=$(realpath "$bin")
dir=target/bench/convert
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"

python3 - <<'PY'
import hashlib, io, json, os, tarfile
def image(name, layer):
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cid = hashlib.sha256(cfg).hexdigest()
    man = json.dumps([{"Config": cid + ".json", "RepoTags": [name + ":1"],
                       "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(f"{name}_1_{cid[:12]}.docker", "w", format=tarfile.GNU_FORMAT) as t:
        for n, data in [("l/layer.tar", layer), (cid + ".json", cfg), ("manifest.json", man)]:
            info = tarfile.TarInfo(n); info.size = len(data); t.addfile(info, io.BytesIO(data))
def layer(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data); t.addfile(info, io.BytesIO(data))
    return b.getvalue()
noise = os.urandom(64 << 20)
text = b"".join(b"line %08d of a log file with some words\n" % i for i in range(1 << 21))[:64 << 20]
image("big", layer([(f"f{i}", (noise if i % 2 == 0 else text) * 2) for i in range(8)]))
folders = ["d/" * (i + 1) for i in range(2000)]
image("deep", layer([(f, None) for f in folders] + [(folders[-1] + f"f{i}", b"") for i in range(5000)]))
PY

big=$(ls big_*.docker)
cp "$big" plain.tar
t() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
zst_cli=$(t zstd -q -T0 -3 -f plain.tar -o plain.zst)
zst_ours=$(t "$bin" --basedir . compress --format zst "$big")
unzst_cli=$(t zstd -q -d -f plain.zst -o plain.back)
unzst_ours=$(t "$bin" --basedir . decompress "${big%.docker}.zst")
zip_cli=$(t zip -q -6 plain.zip plain.tar)
zip_ours=$(t "$bin" --basedir . compress --format zip "$big")
verify=$(t "$bin" verify "${big%.docker}.zip")
rm -rf out
deep=$(t "$bin" extract "$(ls deep_*.docker)" out)
printf '| run | seconds |\n| --- | --- |\n'
printf '| zstd -T0 -3 | %s |\n| toolbox compress --format zst (checked) | %s |\n' "$zst_cli" "$zst_ours"
printf '| zstd -d | %s |\n| toolbox decompress .zst (checked) | %s |\n' "$unzst_cli" "$unzst_ours"
printf '| zip -6 | %s |\n| toolbox compress --format zip (checked) | %s |\n' "$zip_cli" "$zip_ours"
printf '| toolbox verify .zip | %s |\n| toolbox extract, 5,000 files 2,000 folders deep | %s |\n' "$verify" "$deep"
printf '\nratios: compress zst %s, decompress zst %s, compress zip %s\n' \
    "$(echo "scale=2; $zst_ours / $zst_cli" | bc)" \
    "$(echo "scale=2; $unzst_ours / $unzst_cli" | bc)" \
    "$(echo "scale=2; $zip_ours / $zip_cli" | bc)"
