"""CPU seconds of full-scale builds of clean, label_noise_0.3 and low_diversity, the feature variants with their
feature cache cold and then warm, as ratios to clean, all measured in one run.

Each build runs in a fresh interpreter importing `luma` from a checkout (this one by default), with its own LUMA_HOME
and cache_dir; a warm build reuses the cold build's LUMA_HOME and cache_dir, rebuilding the tables
(download_mode="force_redownload") so that only cached features are reused. CPU is the process time of all the
build's threads, imports left out. With `--before DIR` (a checkout of main, say) every build also runs from DIR,
interleaved with this checkout's, and the after / before ratio of each is printed. The source is read once first, so
that no build pays for the disk; `--repeat N` keeps each build's least CPU of N runs (the machine is shared). Goals:
clean CPU <= 0.75x before; the feature variants <= 1.3x clean cold and <= 1.05x clean warm.

    python bench/variant_speed.py [--before /work/main] [--source DIR] [--repeat N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_speed import FULL_SCALE, source_at  # noqa: E402

BUILD = """
import json, resource, sys, time
start = time.process_time()
from luma import Luma
import luma
imported = time.process_time()
builder = Luma(sys.argv[1], data_dir=sys.argv[2], cache_dir=sys.argv[3])
builder.download_and_prepare(download_mode=sys.argv[4])
cpu = time.process_time() - imported
records = sum(split.num_examples for split in builder.info.splits.values())
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu": cpu, "records": records, "rss_mb": rss_mb, "luma": luma.__file__}))
"""

VARIANTS = ("clean", "label_noise_0.3", "low_diversity")  # the last two compute features


def build(checkout: Path, config: str, source: Path, home: Path, cache: Path, warm: bool) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "PYTHONDONTWRITEBYTECODE": "1",  # leave the other checkout as it is
        "LUMA_HOME": str(home),
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }
    mode = "force_redownload" if warm else "reuse_dataset_if_exists"
    args = [sys.executable, "-c", BUILD, config, str(source), str(cache), mode]
    output = subprocess.run(args, capture_output=True, text=True, env=env, cwd=checkout)
    if output.returncode:
        raise SystemExit(output.stderr[-3000:])
    result = json.loads(output.stdout.strip().splitlines()[-1])
    if not result["luma"].startswith(str(checkout)):
        raise SystemExit(f"imported {result['luma']}, not the checkout {checkout}")
    return result


def measure(checkout: Path, config: str, source: Path) -> dict[str, dict]:
    """A cold build of `config`, then for a feature variant a warm one in the same folders: label -> result."""
    with tempfile.TemporaryDirectory() as scratch:
        home, cache = Path(scratch, "home"), Path(scratch, "cache")
        if config == "clean":
            return {config: build(checkout, config, source, home, cache, warm=False)}
        cold = build(checkout, config, source, home, cache, warm=False)
        return {f"{config} cold": cold, f"{config} warm": build(checkout, config, source, home, cache, warm=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout to compare with (read only)")
    parser.add_argument("--source", type=Path, help="a source folder (default: the full-scale synthetic source)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each build, the least CPU kept")
    args = parser.parse_args()
    source = args.source or source_at("full", FULL_SCALE)
    for path in source.rglob("*"):  # into the page cache
        if path.is_file():
            path.read_bytes()
    checkouts = {"after": HERE.parent}
    if args.before:
        checkouts["before"] = args.before.resolve()
    cpu = {name: {} for name in checkouts}
    print(f"machine: {os.cpu_count()} cores; source {source}")
    for config in VARIANTS:
        for name, checkout in checkouts.items():
            runs = [measure(checkout, config, source) for _ in range(args.repeat)]
            for label in runs[0]:
                result = min((run[label] for run in runs), key=lambda r: r["cpu"])
                cpu[name][label] = result["cpu"]
                print(
                    f"{name:<6} {label:<21} {result['records']:>6} records  CPU {result['cpu']:7.1f} s  "
                    f"peak RSS {result['rss_mb']:5.0f} MB  x clean {result['cpu'] / cpu[name]['clean']:.2f}",
                    flush=True,
                )
    if "before" in cpu:
        for label in cpu["after"]:
            print(f"{label:<21} after / before CPU: {cpu['after'][label] / cpu['before'][label]:.2f}")


if __name__ == "__main__":
    main()
