"""Time to the first streamed record, from before `import luma`, each run in a fresh interpreter.

Two ways: decoded (the default: PIL image, torchcodec audio, its samples read) and with decoding off
(`IterableDataset.decode(False)`: PNG and WAV bytes). Also says whether torch / torchcodec got imported.

    python bench/first_record.py [SOURCE_FOLDER] [--runs 3]   # default: the mini source of `luma mini`
"""

import argparse
import statistics

from build_speed import run

FIRST_RECORD = """
import json, sys, time
start = time.perf_counter()
from luma import Luma
stream = Luma("clean", data_dir=sys.argv[1]).as_streaming_dataset("train")
decoded = sys.argv[2] == "decoded"
record = next(iter(stream if decoded else stream.decode(False)))
if decoded:
    record["audio"]["array"]  # the samples, not only the container's header
imported = [m for m in ("torch", "torchcodec") if m in sys.modules]
print(json.dumps({"seconds": time.perf_counter() - start, "imported": imported}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", nargs="?", help="a LUMA source folder (default: the mini source)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.source is None:
        from luma_builders.cli import mini_source

        args.source = str(mini_source())
    for mode in ("decoded", "undecoded"):
        results = [run(FIRST_RECORD, args.source, mode) for _ in range(args.runs)]
        seconds = [r["seconds"] for r in results]
        imported = ", ".join(results[-1]["imported"]) or "neither torch nor torchcodec"
        print(
            f"first record, {mode:<9}: median {statistics.median(seconds):.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in seconds)}); imported {imported}"
        )


if __name__ == "__main__":
    main()
