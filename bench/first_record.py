"""Time to the first streamed record, and the stream's throughput after it, each run in a fresh interpreter.

Imports are timed apart (luma, and what datasets and the audio feature import on first use: torch, torchcodec); the
first record is timed from the call `Luma(...)`. Cold: the decoded source cache is empty (a LUMA_HOME of the run's
own); warm: it holds the source (filled by one unmeasured stream first). Three ways each: decoded by `datasets` (PIL
image, torchcodec audio, its samples read), decoded by `luma.decode_without_torchcodec` (PIL image, samples from
LUMA's WAV reader) and with decoding off (`IterableDataset.decode(False)`: PNG and WAV bytes). Also says whether
torch / torchcodec got imported. Goals at full scale: first record within 1 s warm, 3 s cold; >= 500
records/s. Last, the warm decoded streams' throughput in a torch DataLoader with 0 and 2 workers (each worker decodes
its own shards; torchcodec's decoder costs about 1.5 ms a clip before it decodes anything, which bounds one process).

    python bench/first_record.py [SOURCE_FOLDER | full] [--runs 3] [--records 2000]
    # default: the mini source of `luma mini`; `full`: the full-scale synthetic source of bench/build_speed.py
"""

import argparse
import itertools
import os
import statistics
import tempfile

from build_speed import FULL_SCALE, run, source_at

FIRST_RECORD = """
import itertools, json, sys, time
start = time.perf_counter()
from luma import Luma, decode_without_torchcodec
import datasets.config
mode = sys.argv[2]
decoded = mode != "undecoded"
if datasets.config.TORCH_AVAILABLE:
    import torch  # datasets imports it when it makes a stream
if mode == "decoded":
    import torchcodec.decoders  # the audio feature imports it to decode the first clip
called = time.perf_counter()
stream = Luma("clean", data_dir=sys.argv[1]).as_streaming_dataset("train")
if mode == "numpy":
    stream = decode_without_torchcodec(stream)
elif mode == "undecoded":
    stream = stream.decode(False)
records = iter(stream)
record = next(records)
if decoded:
    record["audio"]["array"]  # the samples, not only the container's header
first = time.perf_counter()
count = 0
for record in itertools.islice(records, int(sys.argv[3])):
    if decoded:
        record["audio"]["array"]
    count += 1
imported = [m for m in ("torch", "torchcodec") if m in sys.modules]
print(json.dumps({
    "imports": called - start, "seconds": first - called, "per_second": count / (time.perf_counter() - first),
    "imported": imported,
}))
"""

# A decoded stream in a DataLoader: the workers decode, the batches carry what a training step needs of each record.
LOADER = """
import itertools, json, sys, time
import torch
from torch.utils.data import DataLoader
from luma import Luma, decode_without_torchcodec

def samples(rows):
    return [(row["image"], torch.from_numpy(row["audio"]["array"]), row["label"]) for row in rows]

stream = Luma("clean", data_dir=sys.argv[1]).as_streaming_dataset("train")
if sys.argv[4] == "numpy":
    stream = decode_without_torchcodec(stream)
batches = iter(DataLoader(stream, batch_size=64, collate_fn=samples, num_workers=int(sys.argv[2])))
next(batches)  # the workers started
start, count = time.perf_counter(), 0
for batch in itertools.islice(batches, int(sys.argv[3]) // 64):
    count += len(batch)
print(json.dumps({"per_second": count / (time.perf_counter() - start)}))
"""


# How each measured stream decodes (the FIRST_RECORD and LOADER scripts' mode argument).
MODES = {
    "decoded": "decoded by datasets (torchcodec)",
    "numpy": "decoded by luma.decode_without_torchcodec",
    "undecoded": "undecoded (PNG and WAV bytes)",
}


def measure(source: str, mode: str, warm: bool, runs: int, records: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        homes = [os.path.join(folder, "warm" if warm else f"cold-{i}") for i in range(runs)]  # LUMA_HOME per run
        if warm:
            run(FIRST_RECORD, source, "undecoded", "0", env={"LUMA_HOME": homes[0]})
        return [run(FIRST_RECORD, source, mode, str(records), env={"LUMA_HOME": home}) for home in homes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", nargs="?", help="a LUMA source folder, or `full` (default: the mini source)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=2000, help="records streamed after the first, for throughput")
    args = parser.parse_args()
    if args.source is None:
        from luma_builders.cli import mini_source

        args.source = str(mini_source())
    elif args.source == "full":
        args.source = str(source_at("full", FULL_SCALE))
    print(f"source {args.source}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for warm in (False, True):
        for mode in MODES:
            results = measure(args.source, mode, warm, args.runs, args.records)
            seconds = [r["seconds"] for r in results]
            imported = ", ".join(results[-1]["imported"]) or "neither torch nor torchcodec"
            print(
                f"{'warm' if warm else 'cold'}, {MODES[mode]}: first record {statistics.median(seconds):.2f} s "
                f"after the call (runs {', '.join(f'{s:.2f}' for s in seconds)}), imports before it "
                f"{statistics.median(r['imports'] for r in results):.2f} s; then "
                f"{statistics.median(r['per_second'] for r in results):.0f} records/s; imported {imported}"
            )
    with tempfile.TemporaryDirectory() as home:
        run(FIRST_RECORD, args.source, "undecoded", "0", env={"LUMA_HOME": home})  # the source cache warm
        for mode, workers in itertools.product(("decoded", "numpy"), (0, 2)):
            rates = [
                run(LOADER, args.source, str(workers), str(args.records), mode, env={"LUMA_HOME": home})["per_second"]
                for _ in range(args.runs)
            ]
            print(
                f"warm, {MODES[mode]}, DataLoader with {workers} workers: {statistics.median(rates):.0f} records/s "
                f"(runs {', '.join(f'{r:.0f}' for r in rates)})"
            )
    print(f"load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
