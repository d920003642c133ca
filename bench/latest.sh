#!/usr/bin/env bash
# Lists and resolves the latest of a directory of 100,000 archives (small bodies whose ends pass
# the quick check `latest`, `config` and `clean` make: a whole tar, a ZIP of one entry).
# Target: `toolbox latest --json` in under 0.5 s on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TOOLBOX_BIN:-target/release/toolbox}
[[ -x $bin ]] || cargo build --release
dir=target/bench/latest
count=${COUNT:-100000}

if [[ ! -f $dir/.complete-sound-$count ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    echo "creating $count archive names in $dir" >&2
    python3 - "$dir" "$count" <<'PY'
import io, os, sys, random, tarfile, zipfile
d, count = sys.argv[1], int(sys.argv[2])
tar = io.BytesIO()
with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT) as t:
    t.addfile(tarfile.TarInfo("manifest.json"), io.BytesIO(b""))
zipped = io.BytesIO()
with zipfile.ZipFile(zipped, "w") as z:
    z.writestr("a.docker", tar.getvalue())
body = {"docker": tar.getvalue(), "zip": zipped.getvalue(), "bak": b""}
random.seed(7)
images = [f"image{i:03d}" for i in range(500)]
formats = ["zip", "docker", "zip", "bak"]
versions = lambda: random.choice([
    f"{random.randint(0, 9)}.{random.randint(0, 30)}.{random.randint(0, 99)}",
    f"{random.randint(0, 9)}.{random.randint(0, 30)}.{random.randint(0, 99)}.{random.randint(0, 9)}",
    "latest", "dev", f"v{random.randint(0, 9)}.{random.randint(0, 9)}.0-rc.{random.randint(1, 9)}",
    f"{random.randint(0, 9)}.{random.randint(0, 9)}+dirty",
])
made = set()
sub = 0
while len(made) < count:
    name = f"{random.choice(images)}_{versions()}_{random.getrandbits(48):012x}.{random.choice(formats)}"
    if name in made:
        continue
    made.add(name)
    folder = os.path.join(d, f"part{len(made) % 10}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(body[name.rsplit(".", 1)[1]])
PY
    touch "$dir/.complete-sound-$count"
fi

echo "$(nproc) cores; $count archive names"
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --runs 10 -N \
        "$bin latest --json --basedir $dir" \
        "$bin images --json --basedir $dir" \
        "$bin clean --dry-run --json --basedir $dir"
else
    for cmd in "latest --json" "images --json" "clean --dry-run --json"; do
        start=$(date +%s%N)
        $bin $cmd --basedir "$dir" >/dev/null
        echo "toolbox $cmd: $(( ($(date +%s%N) - start) / 1000000 )) ms"
    done
fi
