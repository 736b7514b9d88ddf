"""`luma download` at full scale through the loopback fake Hub, then the offline build (issue 8).

A synthetic source at the real sizes (42 x 600 in-distribution + OOD, see build_speed.FULL_SCALE) is served as the
Hub repo (tests/fake_hub.py) and as the published CIFAR and split-file URLs (tests/http_server.py, named by a
LUMA_SOURCE_MANIFEST). Each measurement runs in a fresh interpreter with its own HF cache and LUMA_HOME and prints
its wall time and peak RSS; the fake Hub counts the requests. Runs: the first download, a second (warm) download,
then the `clean` build with HF_HUB_OFFLINE=1, which must reach the Hub not once.

    python bench/hub_download.py [--rtt-ms 20 50 100]

The source is written once under $LUMA_BENCH_DIR (default: <tmp>/luma-bench), shared with build_speed.py.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from build_speed import FULL_SCALE, source_at  # noqa: E402
from fake_hub import FakeHub  # noqa: E402
from http_server import serve  # noqa: E402
from test_published_source import PUBLISHED_ELSEWHERE, extracted_md5s, hub_part, sha256  # noqa: E402

from luma_builders.sources.download import DOWNLOAD_WORKERS  # noqa: E402
from luma_builders.sources.locations import published  # noqa: E402

PEAK_RSS = "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss"

# The clips phase is timed from the progress bar's creation (metadata read) to its closing.
DOWNLOAD = f"""
import json, resource, time
from luma_builders.sources.download import download
from luma_builders.sources.locations import Source
clocks = []
class Clock:
    def __init__(self, total, **_):
        self.started = time.perf_counter()
        clocks.append(self)
    def update(self, count):
        pass
    def close(self):
        self.seconds = time.perf_counter() - self.started
start = time.perf_counter()
summary = download(Source.open(), everything=False, progress_factory=Clock)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "clips_seconds": clocks[0].seconds, "clips": summary.clips,
                  "metadata_files": summary.metadata_files, "rss_mb": ({PEAK_RSS}) / 1024}}))
"""

BUILD = f"""
import json, resource, sys, time
from luma import Luma
start = time.perf_counter()
builder = Luma("clean", cache_dir=sys.argv[1])
builder.download_and_prepare()
seconds = time.perf_counter() - start
records = sum(split.num_examples for split in builder.info.splits.values())
print(json.dumps({{"seconds": seconds, "records": records, "rss_mb": ({PEAK_RSS}) / 1024}}))
"""


def run(script: str, env: dict, *args: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT
    )
    if output.returncode:
        raise SystemExit(output.stderr[-3000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def hub_repo(full: Path) -> Path:
    """The Hub repo's part of the source (no CIFAR, split files or SHA256SUMS), copied once beside it."""
    repo = full.with_name(full.name + "-hub")
    if not repo.exists():
        partial = hub_part(full, full.with_name(full.name + "-hub.partial"))
        partial.rename(repo)
    return repo


def write_manifest(full: Path, web: str, path: Path) -> None:
    """The published table with CIFAR and the split files at `web` and the synthetic source's checksums."""
    table = published()
    table["files"] = {
        relpath: {"url": f"{web}/{relpath}", "algorithm": "sha256", "checksum": sha256(full / relpath)}
        for relpath in PUBLISHED_ELSEWHERE
    }
    table["cifar_extracted"]["md5"] = extracted_md5s(full)
    path.write_text(json.dumps(table))


def kind(request) -> str:
    if request.path.startswith("/api/"):
        return "API"
    return "CDN" if request.path.startswith("/lfs/") else "resolve"


def counts(requests) -> str:
    by = collections.Counter(f"{kind(r)} {r.method}" for r in requests)
    return ", ".join(f"{key} {count}" for key, count in sorted(by.items())) or "none"


def measure(full: Path, work: Path) -> dict:
    manifest = work / "manifest.json"
    env = {"HF_HUB_CACHE": str(work / "hf_cache"), "LUMA_HOME": str(work / "luma_home")}
    env.update(LUMA_SOURCE_MANIFEST=str(manifest), HF_DATASETS_OFFLINE="0", HF_HUB_OFFLINE="0")
    env.update(HF_HOME=str(work / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1")
    with serve(full) as web, FakeHub(hub_repo(full)) as hub:
        write_manifest(full, web, manifest)
        hub.commit  # noqa: B018 - hash the repo now, not during the measured download
        env["HF_ENDPOINT"] = hub.endpoint
        cold = run(DOWNLOAD, env)
        cold["requests"] = hub.requests
        warm = run(DOWNLOAD, env)
        warm["requests"] = hub.requests[len(cold["requests"]) :]
        served = len(hub.requests)
        offline = run(BUILD, {**env, "HF_HUB_OFFLINE": "1"}, str(work / "datasets_cache"))
        offline["requests"] = hub.requests[served:]
    assert not offline["requests"], f"the offline build reached the Hub: {offline['requests'][:5]}"
    return {"cold": cold, "warm": warm, "offline": offline}


def report(figures: dict, rtts_ms: list[float]) -> None:
    cold, warm, offline = figures["cold"], figures["warm"], figures["offline"]
    clips = cold["clips"]
    print(f"{'run':<22}{'wall s':>8}{'peak RSS MB':>13}{'requests':>10}  by kind")
    for name, result in (("download (cold)", cold), ("download (warm)", warm), ("clean build, offline", offline)):
        requests = result["requests"]
        print(f"{name:<22}{result['seconds']:8.1f}{result['rss_mb']:13.0f}{len(requests):10d}  {counts(requests)}")
    per_clip = cold["clips_seconds"] / clips
    print(
        f"cold: {clips} clips + {cold['metadata_files']} metadata files; clips phase {cold['clips_seconds']:.1f} s "
        f"({clips / cold['clips_seconds']:.0f} clips/s, {per_clip * 1000:.2f} ms/clip on loopback, "
        f"{DOWNLOAD_WORKERS} workers); metadata phase {cold['seconds'] - cold['clips_seconds']:.1f} s"
    )
    print(f"offline clean build: {offline['records']} records")
    print("real Hub estimate, N clips at round-trip RTT, 2 round trips a clip (HEAD resolve + GET CDN):")
    print(f"  T ~ N * ({per_clip * 1000:.2f} ms + 2 * RTT / {DOWNLOAD_WORKERS})  (+ transfer time)")
    for rtt in rtts_ms:
        seconds = 29_000 * (per_clip + 2 * rtt / 1000 / DOWNLOAD_WORKERS)
        print(f"  N=29,000 RTT={rtt:g} ms: {seconds:.0f} s ({seconds / 60:.1f} min)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[20, 50, 100, 200])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    full = source_at("full", FULL_SCALE)
    with tempfile.TemporaryDirectory() as work:
        figures = measure(full, Path(work))
    report(figures, args.rtt_ms)


if __name__ == "__main__":
    main()
