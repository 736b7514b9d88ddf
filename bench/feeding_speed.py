"""Feeding a model: records/s of one epoch of a built clean train split through a torch DataLoader, all measured in
one run and given as ratios to `with_format("torch")`.

- `with_format("torch")`: every field read as `datasets` gives it in torch format, audio decoded to its samples
  (what a model needs before any transform): the reference. Its images and labels alone are printed too.
- `LumaCollator` on the split as built (datasets decodes the audio through torchcodec), on the split with its audio
  left undecoded (`cast_column("audio", Audio(decode=False))`: WAV bytes, decoded by the collator), and on
  `add_log_mels(split)` (log-mels computed once; the time of that `map` is printed apart, once, cold).

Rates are records per second of wall time and of the process's CPU time (the machine is shared: CPU time says what
the work costs, wall time what a busy machine gave). Goal: the collator on `add_log_mels` at least as fast as
`with_format("torch")`. The text embeddings are cached first, as after a first epoch.

    python bench/feeding_speed.py [--full] [--batch-size 64] [--num-workers 0] [--repeat 3]
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader

from baselines.data import LumaCollator, TextEmbedder, add_log_mels
from luma import Luma

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_speed import FULL_SCALE, source_at  # noqa: E402


def read_torch_format(rows: list[dict]) -> dict:
    """The reference's collate: images and labels stacked, every clip decoded to its samples, the rest as given."""
    return {
        "image": torch.stack([row["image"] for row in rows]),
        "audio": [row["audio"].get_all_samples().data for row in rows],
        "label": torch.stack([row["label"] for row in rows]),
        "rest": [{k: v for k, v in row.items() if k not in ("image", "audio", "label")} for row in rows],
    }


def epoch(dataset, collate_fn, batch_size: int, num_workers: int) -> tuple[int, float, float]:
    """(records, wall seconds, CPU seconds of this process and its DataLoader workers) of one epoch."""

    def cpu() -> float:
        own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers)
    records, start, start_cpu = 0, time.perf_counter(), cpu()
    for batch in loader:
        records += len(batch["labels" if "labels" in batch else "label"])
    return records, time.perf_counter() - start, cpu() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="the full-scale source (21,000 train records)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="keep each reading's best of N epochs")
    args = parser.parse_args()

    source = source_at("full", FULL_SCALE) if args.full else source_at("mini", {})
    with tempfile.TemporaryDirectory() as cache:
        builder = Luma("clean", data_dir=str(source), cache_dir=cache)
        builder.download_and_prepare()
        split = builder.as_dataset("train")
        embedder = TextEmbedder(cache_dir=Path(cache, "text"))
        embedder(split["text"])
        start, start_cpu = time.perf_counter(), time.process_time()
        with_mels = add_log_mels(split)
        print(
            f"add_log_mels: {len(split) / (time.perf_counter() - start):6.0f} records/s wall, "
            f"{len(split) / (time.process_time() - start_cpu):6.0f} per CPU second (once per split)"
        )
        collator = LumaCollator(embedder)
        readings = {
            'with_format("torch"), image + label': (split.with_format("torch", columns=["image", "label"]), None),
            'with_format("torch"), every field': (split.with_format("torch"), read_torch_format),
            "LumaCollator, audio decoded by datasets": (split, collator),
            "LumaCollator, audio as WAV bytes": (split.cast_column("audio", datasets.Audio(decode=False)), collator),
            "LumaCollator on add_log_mels": (with_mels, collator),
        }
        print(
            f"{len(split)} records, batch {args.batch_size}, num_workers {args.num_workers}, "
            f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
        )
        rates = {}
        for name, (dataset, collate_fn) in readings.items():
            best = min(
                (epoch(dataset, collate_fn, args.batch_size, args.num_workers) for _ in range(args.repeat)),
                key=lambda result: result[2],
            )
            rates[name] = (best[0] / best[1], best[0] / best[2])
        reference = rates['with_format("torch"), every field']
        for name, (wall, per_cpu) in rates.items():
            print(
                f"{name:40s} {wall:6.0f} records/s wall, {per_cpu:6.0f} per CPU second  "
                f"(x{wall / reference[0]:.2f} wall, x{per_cpu / reference[1]:.2f} CPU)"
            )


if __name__ == "__main__":
    main()
