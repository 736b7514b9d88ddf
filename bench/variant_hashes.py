"""sha256 of the Arrow tables of every named variant built from the default mini source: run before and after a
refactor, the two outputs must be identical (the same parameters give the same bytes).

    python bench/variant_hashes.py [--source DIR] [--variants clean,sample_noise,...] [--without id] > hashes.txt

`--without` leaves columns out, to compare with a build from before they were added.
"""

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from luma import CONFIGS, Luma
from luma_builders.cli import mini_source


def table_hash(dataset, without: list[str]) -> str:
    digest = hashlib.sha256()
    table = dataset.data.table
    for batch in table.drop_columns([c for c in without if c in table.column_names]).to_batches():
        for column in batch.columns:
            for buffer in column.buffers():
                digest.update(b"" if buffer is None else buffer.to_pybytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None, help="a source folder (default: the embedded mini source)")
    parser.add_argument("--variants", default=",".join(c.name for c in CONFIGS))
    parser.add_argument("--without", default="", help="comma-separated columns to leave out")
    args = parser.parse_args()
    source = args.source or str(mini_source())
    without = [column for column in args.without.split(",") if column]
    with tempfile.TemporaryDirectory() as cache:
        for name in args.variants.split(","):
            builder = Luma(name, data_dir=source, cache_dir=cache)
            builder.download_and_prepare()
            for split in builder.info.splits:
                dataset = builder.as_dataset(split)
                print(f"{name:<16} {split:<6} {len(dataset):>6} {table_hash(dataset, without)}", flush=True)
    print(f"source: {Path(source).name}", file=sys.stderr)


if __name__ == "__main__":
    main()
