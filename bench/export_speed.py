"""Export speed (`luma export`): records/s and MB/s of Parquet written, mini source and full scale.

Each export runs twice in a fresh interpreter with one builder cache: `cold` builds the variants and writes
them (what `luma export` costs from nothing), `warm` finds them prepared and only writes the Parquet shards
and the card (the cost of the export step itself). Also prints the shard count, the largest row group
(the viewer reads at most 286 MiB per request) and peak RSS.

    python bench/export_speed.py [--skip-full] [--configs clean,label_noise_0.3] [--num-proc N]
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

EXPORT = """
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from luma import export
source, cache, out, configs, num_proc = sys.argv[1:6]
start = time.perf_counter()
export(configs.split(","), out, data_dir=source, cache_dir=cache, num_proc=int(num_proc) or None, overwrite=True)
seconds = time.perf_counter() - start
shards = sorted(Path(out).rglob("*.parquet"))
metas = [pq.ParquetFile(p).metadata for p in shards]
row_groups = [m.row_group(i) for m in metas for i in range(m.num_row_groups)]
print(json.dumps({
    "seconds": seconds,
    "records": sum(m.num_rows for m in metas),
    "bytes": sum(p.stat().st_size for p in shards),
    "shards": len(shards),
    "max_row_group_mb": max(g.total_byte_size for g in row_groups) / 2**20,
    "rows_per_row_group": max(g.num_rows for g in row_groups),
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run(*args: str) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "0"}
    output = subprocess.run([sys.executable, "-c", EXPORT, *args], capture_output=True, text=True, env=env)
    if output.returncode:
        raise SystemExit(output.stderr[-3000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def report(name: str, root: Path, configs: str, num_proc: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        cache, out = str(Path(work) / "cache"), str(Path(work) / "out")
        for phase in ("cold", "warm"):
            r = run(str(root), cache, out, configs, str(num_proc))
            print(
                f"{name:<5} {phase}  {configs}  num_proc={num_proc}  {r['records']:>6} records  "
                f"{r['bytes'] / 1e6:7.1f} MB in {r['shards']:>3} shards  {r['seconds']:7.1f} s  "
                f"{r['records'] / r['seconds']:7.0f} rec/s  {r['bytes'] / 1e6 / r['seconds']:6.1f} MB/s  "
                f"row groups <= {r['rows_per_row_group']} rows, max {r['max_row_group_mb']:.1f} MiB  "
                f"peak RSS {r['rss_mb']:.0f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full", action="store_true", help="only the mini source")
    parser.add_argument("--configs", default="clean,label_noise_0.3")
    parser.add_argument("--num-proc", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    report("mini", source_at("mini", {}), args.configs, args.num_proc)
    if not args.skip_full:
        report("full", source_at("full", FULL_SCALE), args.configs, args.num_proc)


if __name__ == "__main__":
    main()
