"""Label switching at the full training size: 21,000 samples (42 classes x 500), p = 0.3.

Prints wall time, CPU time and peak RSS of switch_labels on 1024-d float32 features (goal: <= 10 s on 2 cores),
and of switch_record_labels on three modalities of 1024, 768 and 50 dimensions, with the machine's core count.
The work is mostly one BLAS product on all cores: a wall time well above CPU time / cores means a busy machine.

    python bench/label_switching.py
"""

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.plan.selection import switch_labels, switch_record_labels

PER_CLASS = 500
P = 0.3
MODALITY_DIMS = {"image": 1024, "text": 768, "audio": 50}


def measure(case: str) -> dict:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(NUM_ID_CLASSES), PER_CLASS)
    dims = {"image": 1024} if case == "switch_labels" else MODALITY_DIMS
    features = {name: rng.random((len(labels), d), dtype=np.float32) for name, d in dims.items()}
    input_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, start_cpu = time.perf_counter(), time.process_time()
    if case == "switch_labels":
        _, switched = switch_labels(features["image"], labels, P, rng, NUM_ID_CLASSES)
    else:
        _, switched, _ = switch_record_labels(features, labels, P, rng, NUM_ID_CLASSES)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak_mb,
        "input_rss_mb": input_mb,
        "switched": int(switched.sum()),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2])))
        return
    print(f"cores: os.cpu_count()={os.cpu_count()}, usable={len(os.sched_getaffinity(0))}")
    print(f"{NUM_ID_CLASSES * PER_CLASS} samples, {NUM_ID_CLASSES} classes, p={P}, k=5")
    for case, what in [("switch_labels", "1024-d"), ("switch_record_labels", "1024 + 768 + 50-d")]:
        # A fresh interpreter per case, so that the peak RSS is that case's own.
        child = subprocess.run(
            [sys.executable, __file__, "--measure", case], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout)
        print(
            f"{case:22s} {what:18s} {result['seconds']:6.2f} s (CPU {result['cpu_seconds']:5.1f} s)  "
            f"peak RSS {result['peak_rss_mb']:4.0f} MB (before the call {result['input_rss_mb']:.0f} MB)  "
            f"switched {result['switched']}"
        )


if __name__ == "__main__":
    main()
