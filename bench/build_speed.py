"""Build speed on the mini source and on a synthetic source at the real sizes; streaming latency.

Prints records/s, wall time, peak RSS (the parent's, and the process tree's: num_proc workers included) and the
ratio to the floor (reading + decoding + encoding the same records with no builder), and the time to the first
record streamed over loopback HTTP. At full scale the decoded source cache is first cold, then warm.
Goals (2 cores): full-scale clean build <= 2 min, <= 1.5x the floor, process tree RSS <= 1.5 GB; num_proc=2 wall
<= 0.65x num_proc=1; first record <= 3 s; sample_noise build <= 2x the clean build.

    python bench/build_speed.py [--skip-full] [--repeat 3]
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

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
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu = sum(u.ru_utime + u.ru_stime for u in usage)  # the num_proc workers are joined children by now
print(json.dumps({"seconds": seconds, "records": records, "rss_mb": usage[0].ru_maxrss / 1024, "cpu": cpu}))
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


def tree_rss(process: psutil.Process) -> int:
    """The summed RSS of `process` and its descendants (num_proc workers). Pages they share (forked, mapped files)
    count once per process: an upper bound of what the tree holds."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def run(script: str, *args: str, env: dict | None = None) -> dict:
    """Run `script` in a fresh interpreter and return the JSON of its last line, with `tree_rss_mb`: the peak of
    `tree_rss`, sampled every 50 ms (`ru_maxrss` of RUSAGE_CHILDREN is only the largest single process)."""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "0", **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-c", script, *args], stdout=out, stderr=err, text=True, env=env)
        process, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                peak = max(peak, tree_rss(process))
            time.sleep(0.05)
        out.seek(0), err.seek(0)
        if child.returncode:
            raise SystemExit(err.read()[-3000:])
        return {**json.loads(out.read().strip().splitlines()[-1]), "tree_rss_mb": peak / 2**20}


def source_at(name: str, sizes: dict) -> Path:
    from luma_builders.mini.source import write_mini_source

    root = Path(os.environ.get("LUMA_BENCH_DIR", Path(tempfile.gettempdir()) / "luma-bench")) / name
    if not (root / "SHA256SUMS").exists():
        start = time.perf_counter()
        write_mini_source(root, seed=0, **sizes)
        print(f"  (wrote the {name} source in {time.perf_counter() - start:.0f} s)")
    return root


def report(name: str, root: Path, num_proc: int, config: str = "clean", floor: dict | None = None, **run_env) -> dict:
    """Build `config` from `root`; print it against `floor` (measured here if not given). Returns the build."""
    with tempfile.TemporaryDirectory() as cache:
        build = run(BUILD, str(root), cache, str(num_proc), config, env=run_env)
    floor = floor or run(FLOOR, str(root))
    print(
        f"{name:<5} {config:<13} num_proc={num_proc}  {build['records']:>6} records  build {build['seconds']:7.1f} s "
        f"({build['records'] / build['seconds']:6.0f} rec/s, CPU {build['cpu']:6.1f} s, "
        f"peak RSS {build['rss_mb']:5.0f} MB parent, "
        f"{build['tree_rss_mb']:5.0f} MB process tree)  "
        f"floor {floor['seconds']:6.1f} s (1 process)  ratio {build['seconds'] / floor['seconds']:.2f}"
    )
    return {**build, "floor": floor}


def full_scale(full: Path, repeat: int) -> None:
    """Clean builds with the decoded source cache cold (a LUMA_HOME of its own), then warm with num_proc 1 and 2,
    `repeat` times each, interleaved: the ratio is of the fastest of each."""
    with tempfile.TemporaryDirectory() as luma_home:
        print("cold source cache:")
        cold = report("full", full, 1, LUMA_HOME=luma_home)
        print("warm source cache:")
        runs = {1: [], 2: []}
        for _ in range(repeat):
            for num_proc, builds in runs.items():
                builds.append(report("full", full, num_proc, floor=cold["floor"], LUMA_HOME=luma_home))
        clean, parallel = (min(builds, key=lambda b: b["seconds"]) for builds in runs.values())
        print(
            f"num_proc=2 / num_proc=1: wall time {parallel['seconds'] / clean['seconds']:.2f}, "
            f"CPU {parallel['cpu'] / clean['cpu']:.2f} (the fastest of {repeat} each; wall reaches CPU / 2 only on an "
            "idle machine)"
        )
        noisy = report("full", full, 1, "sample_noise", floor=cold["floor"], LUMA_HOME=luma_home)
        print(f"sample_noise / clean build time: {noisy['seconds'] / clean['seconds']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full", action="store_true", help="only the mini source")
    parser.add_argument("--repeat", type=int, default=3, help="warm num_proc=1 and 2 builds, the fastest of each kept")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}")
    mini = source_at("mini", {})
    report("mini", mini, 0)
    from http_server import serve

    with serve(mini) as url:
        print(f"first streamed record over loopback HTTP, after import: {run(FIRST_RECORD, url)['seconds']:.2f} s")
    if not args.skip_full:
        full_scale(source_at("full", FULL_SCALE), args.repeat)
        print(f"load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
