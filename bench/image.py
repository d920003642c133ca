#!/usr/bin/env python3
"""Speed of saving, compressing and loading a large image, against the tools users have today.

Builds (FROM scratch, nothing pulled) an image of real files from this machine (binaries,
libraries, text) plus a random part, then measures in one run, alternating, over ROUNDS rounds:
`docker save -o`; `docker save -o` then `zip -6`; `toolbox update-image --compress` (zip and zst);
`toolbox update-image` (no compression); a no-op `toolbox update-image`; `toolbox load` of the
ZIP and `docker load -i` of the tar (each after removing the image from the engine). Prints the
medians, the ratios the targets are stated in, the ZIP size against `zip -6`, and toolbox's peak
RSS, and writes them to bench/RESULTS.md.

Run through `just bench` (which builds the release binary and starts the engine).
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_DIR", ROOT / "target" / "bench" / "image"))
TOOLBOX = ROOT / "target" / "release" / "toolbox"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
RANDOM_MB = int(os.environ.get("RANDOM_MB", "200"))
SOURCES = ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/share/doc", "/usr/share/man"]
IMAGE, VERSION = "tbbench", "1.0"
REFERENCE = f"{IMAGE}:{VERSION}"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, rss=False):
    """Runs cmd; returns (seconds, peak RSS in KiB or None)."""
    if rss:
        cmd = ["/usr/bin/time", "-v"] + cmd
    start = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{done.stderr}")
    peak = None
    if rss:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        peak = int(m.group(1)) if m else None
    return elapsed, peak


def build_image():
    ctx = WORK / "context"
    marker = ctx / ".complete"
    if not marker.exists():
        shutil.rmtree(ctx, ignore_errors=True)
        (ctx / "real").mkdir(parents=True)
        for src in SOURCES:
            if Path(src).is_dir():
                dest = ctx / "real" / src.strip("/").replace("/", "_")
                run(["cp", "-a", src, str(dest)])
        with open(ctx / "random.bin", "wb") as f:
            for _ in range(RANDOM_MB):
                f.write(os.urandom(1 << 20))
        (ctx / "Dockerfile").write_text("FROM scratch\nCOPY real/ /real/\nCOPY random.bin /random.bin\n")
        marker.touch()
    if subprocess.run(["docker", "image", "inspect", REFERENCE], capture_output=True).returncode != 0:
        print(f"building {REFERENCE} from {ctx}", file=sys.stderr)
        run([str(TOOLBOX), "build", IMAGE, "--version", VERSION, "--context", str(ctx)], stdout=subprocess.DEVNULL)


def fresh(name):
    d = WORK / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def only_file(d):
    [f] = [p for p in d.iterdir() if not p.name.startswith(".")]
    return f


def main():
    if not TOOLBOX.exists():
        sys.exit("build the release binary first: cargo build --release")
    WORK.mkdir(parents=True, exist_ok=True)
    build_image()
    size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", REFERENCE],
                              capture_output=True, text=True, check=True).stdout)
    print(f"{os.cpu_count()} cores; image {REFERENCE}: {size / 1e9:.2f} GB; {ROUNDS} rounds", file=sys.stderr)

    times = {k: [] for k in ["save", "save_zip", "tb_zip", "tb_zst", "tb_plain", "tb_noop", "tb_load_zip", "docker_load"]}
    rss = {k: [] for k in ["tb_zip", "tb_zst", "tb_plain", "tb_load_zip"]}
    sizes = {}
    update = [str(TOOLBOX), "update-image", IMAGE, "--version", VERSION, "--basedir"]
    for r in range(ROUNDS):
        print(f"round {r + 1}", file=sys.stderr)
        d = fresh("save")
        tar = d / "image.tar"
        t, _ = timed(["docker", "save", "-o", str(tar), REFERENCE])
        times["save"].append(t)
        z = d / "image.zip"
        tz, _ = timed(["zip", "-6", "-q", "-j", str(z), str(tar)])
        times["save_zip"].append(t + tz)
        sizes["tar"], sizes["zip6"] = tar.stat().st_size, z.stat().st_size
        z.unlink()

        for key, extra in [("tb_zip", ["--compress"]), ("tb_zst", ["--compress", "--format", "zst"]), ("tb_plain", [])]:
            out = fresh(key)
            t, peak = timed(update + [str(out)] + extra, rss=True)
            times[key].append(t)
            rss[key].append(peak)
            sizes[key] = only_file(out).stat().st_size
        t, _ = timed(update + [str(WORK / "tb_zip"), "--compress"])
        times["tb_noop"].append(t)

        zipped = only_file(WORK / "tb_zip")
        run(["docker", "rmi", REFERENCE], stdout=subprocess.DEVNULL)
        t, peak = timed([str(TOOLBOX), "load", str(zipped)], rss=True)
        times["tb_load_zip"].append(t)
        rss["tb_load_zip"].append(peak)
        run(["docker", "rmi", REFERENCE], stdout=subprocess.DEVNULL)
        t, _ = timed(["docker", "load", "-i", str(tar)])
        times["docker_load"].append(t)
        shutil.rmtree(d)

    med = {k: statistics.median(v) for k, v in times.items()}
    peak = {k: max(v) / 1024 for k, v in rss.items() if all(v)}
    ratios = [
        ("update-image --compress / docker save -o", med["tb_zip"] / med["save"], "<= 1.3"),
        ("update-image --compress --format zst / docker save -o", med["tb_zst"] / med["save"], "<= 1.1"),
        ("update-image --compress / (docker save -o + zip -6)", med["tb_zip"] / med["save_zip"], "<= 0.333"),
        ("ZIP size / zip -6 size", sizes["tb_zip"] / sizes["zip6"], "<= 1.02"),
        ("toolbox load (zip) / docker load -i (tar)", med["tb_load_zip"] / med["docker_load"], "<= 1.15"),
    ]
    lines = [
        "# Benchmark results",
        "",
        f"Measured by `bench/image.py` (`just bench`) on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"image of {size / 1e9:.2f} GB ({', '.join(SOURCES)} and {RANDOM_MB} MB of random data), "
        f"medians of {ROUNDS} rounds, run alternating.",
        "",
        "| what | median (s) | runs (s) |",
        "| --- | --- | --- |",
    ]
    labels = {
        "save": "`docker save -o`",
        "save_zip": "`docker save -o` then `zip -6`",
        "tb_zip": "`toolbox update-image --compress`",
        "tb_zst": "`toolbox update-image --compress --format zst`",
        "tb_plain": "`toolbox update-image`",
        "tb_noop": "`toolbox update-image --compress` (no-op)",
        "tb_load_zip": "`toolbox load` (ZIP)",
        "docker_load": "`docker load -i` (tar)",
    }
    for k, label in labels.items():
        lines.append(f"| {label} | {med[k]:.2f} | {', '.join(f'{t:.2f}' for t in times[k])} |")
    lines += ["", "| ratio | measured | target |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value:.3f} | {target} |" for name, value, target in ratios]
    lines += [
        "",
        f"Sizes: tar {sizes['tar'] / 1e6:.0f} MB; zip -6 {sizes['zip6'] / 1e6:.0f} MB; "
        f"toolbox ZIP {sizes['tb_zip'] / 1e6:.0f} MB; toolbox zst {sizes['tb_zst'] / 1e6:.0f} MB.",
        "",
        "Peak RSS of toolbox (MiB, `/usr/bin/time -v`): "
        + ", ".join(f"{labels[k]} {v:.1f}" for k, v in peak.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench" / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    main()
