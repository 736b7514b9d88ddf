"""Build speed on the mini source and on a synthetic source at the real sizes; streaming latency.

Prints records/s, wall time, peak RSS and the ratio to the floor (reading + decoding + encoding the
same records with no builder), and the time to the first record streamed over loopback HTTP.
Goals (2 cores): full-scale clean build <= 2 min, <= 1.5x the floor, RSS <= 2 GB; first record <= 3 s;
sample_noise build <= 2x the clean build.

    python bench/build_speed.py [--skip-full]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

FULL_SCALE = {"train_per_class": 500, "test_per_class": 100, "ood_per_class": 480, "spare_per_class": 20}

# Each measurement runs in a fresh interpreter so that peak RSS is its own.
BUILD = """
import json, resource, sys, time
from luma import Luma
start = time.perf_counter()
builder = Luma(sys.argv[4], data_dir=sys.argv[1], cache_dir=sys.argv[2])
builder.download_and_prepare(num_proc=int(sys.argv[3]) if sys.argv[3] != "0" else None)
seconds = time.perf_counter() - start
records = sum(split.num_examples for split in builder.info.splits.values())
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "records": records, "rss_mb": rss_mb}))
"""

FLOOR = """
import json, resource, sys, time
from luma_builders.plan.planning import Selection, load_source, plan_records
from luma_builders.codecs import encode_png
from luma_builders.sources.locations import Source
from luma_builders.codecs import decode_wav, encode_wav
source = Source.open(sys.argv[1])
start = time.perf_counter()
read = lambda relpath: open(source.location(relpath), "rb").read()
data = load_source(source)
plan = plan_records(data, Selection())
records = 0
for split in plan.values():
    for record in split:
        encode_png(data.pools[record.image_pool].images[record.image_id])
        encode_wav(decode_wav(read(record.audio_path), record.audio_path))
        records += 1
seconds = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "records": records, "rss_mb": rss_mb}))
"""

FIRST_RECORD = """
import json, sys, time
from luma import Luma
start = time.perf_counter()
next(iter(Luma("clean", data_dir=sys.argv[1]).as_streaming_dataset("train")))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def run(script: str, *args: str) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "0"}
    output = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    if output.returncode:
        raise SystemExit(output.stderr[-3000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def source_at(name: str, sizes: dict) -> Path:
    from luma_builders.mini.source import write_mini_source

    root = Path(os.environ.get("LUMA_BENCH_DIR", Path(tempfile.gettempdir()) / "luma-bench")) / name
    if not (root / "SHA256SUMS").exists():
        start = time.perf_counter()
        write_mini_source(root, seed=0, **sizes)
        print(f"  (wrote the {name} source in {time.perf_counter() - start:.0f} s)")
    return root


def report(name: str, root: Path, num_proc: int, config: str = "clean", floor: dict | None = None) -> dict:
    """Build `config` from `root`; print it against `floor` (measured here if not given). Returns the build."""
    with tempfile.TemporaryDirectory() as cache:
        build = run(BUILD, str(root), cache, str(num_proc), config)
    floor = floor or run(FLOOR, str(root))
    print(
        f"{name:<5} {config:<13} num_proc={num_proc}  {build['records']:>6} records  build {build['seconds']:7.1f} s "
        f"({build['records'] / build['seconds']:6.0f} rec/s, peak RSS {build['rss_mb']:6.0f} MB)  "
        f"floor {floor['seconds']:6.1f} s (1 process)  ratio {build['seconds'] / floor['seconds']:.2f}"
    )
    return {**build, "floor": floor}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full", action="store_true", help="only the mini source")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    mini = source_at("mini", {})
    report("mini", mini, 0)
    from http_server import serve

    with serve(mini) as url:
        print(f"first streamed record over loopback HTTP, after import: {run(FIRST_RECORD, url)['seconds']:.2f} s")
    if not args.skip_full:
        full = source_at("full", FULL_SCALE)
        clean = report("full", full, 0)
        report("full", full, 2, floor=clean["floor"])
        noisy = report("full", full, 0, "sample_noise", floor=clean["floor"])
        print(f"sample_noise / clean build time: {noisy['seconds'] / clean['seconds']:.2f}")


if __name__ == "__main__":
    main()
