"""The speedup of `luma benchmark --executor ray --workers 2` over the sequential executor on a mini grid.

Writes a mini source (default sizes: `luma_builders.cli.MINI_DEFAULTS`), builds `clean` and embeds its texts once, so
that every run starts from the same warm caches, then runs the same grid sequentially (torch's default threads, then
one thread: this tells the gain of running side by side from that of not sharing cores between threads) and on a local
Ray instance with two workers (one CPU and one torch thread each, as `--executor ray --workers 2` sets them on 2 cores;
its start-up timed apart). Prints each wall and CPU time (the Ray run's counts every process of the Ray instance), the
speedups, whether the runs gave the same numbers, and the load average: on a machine that other work shares, the wall
times depend on the share of the cores each run gets.

    python -m bench.benchmark_executors [--seeds 2] [--epochs 3]   (from the repository root)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil
import torch

from baselines.benchmark import BenchmarkConfig, Runner, benchmark_jobs, run_jobs
from baselines.executors import ExecutorConfig
from luma_builders.cli import MINI_DEFAULTS
from luma_builders.mini.source import write_mini_source


def timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time of `process` and of its live descendants (Ray's workers and daemons)."""
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = member.cpu_times()
            total += times.user + times.system
    return total


def sequential_run(jobs, config, threads: int) -> tuple[list, float, float]:
    """run_jobs in this process on `threads` torch threads: results, wall and CPU time."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    cpu = cpu_seconds(psutil.Process())
    results, seconds = timed(run_jobs, jobs, config)
    torch.set_num_threads(default)
    return results, seconds, cpu_seconds(psutil.Process()) - cpu


def ray_run(jobs, config) -> tuple[list, float, float, float]:
    """run_jobs on a Ray instance started here (the executor uses it as it is): results, start-up, wall and CPU time."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=config.executor.workers * config.executor.threads(), include_dashboard=False)  # as _ray would
    start_up = time.perf_counter() - start
    cpu = cpu_seconds(psutil.Process())
    results, seconds = timed(run_jobs, jobs, config)
    cpu = cpu_seconds(psutil.Process()) - cpu
    ray.shutdown()
    return results, start_up, seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LUMA_HOME"] = str(Path(tmp, "home"))  # inherited by the Ray workers
        source = write_mini_source(Path(tmp, "mini"), **MINI_DEFAULTS)
        config = BenchmarkConfig(
            out=Path(tmp, "sequential"),
            data_dir=str(source),
            cache_dir=str(Path(tmp, "datasets")),
            variants=("clean",),
            methods=("mcd", "rcml"),
            modalities=("text", "multimodal"),
            epochs=args.epochs,
            seeds=args.seeds,
            mc_passes=5,
        )
        jobs = benchmark_jobs(config)
        _, warm_up = timed(Runner(config).prepare, jobs[0])
        sequential, sequential_seconds, sequential_cpu = sequential_run(jobs, config, torch.get_num_threads())
        _, one_thread_seconds, one_thread_cpu = sequential_run(jobs, replace(config, out=Path(tmp, "one_thread")), 1)
        ray_config = replace(config, out=Path(tmp, "ray"), executor=ExecutorConfig(kind="ray", workers=2))
        distributed, start_up, ray_seconds, ray_cpu = ray_run(jobs, ray_config)
    same = [json.dumps(r.metrics) for r in sequential] == [json.dumps(r.metrics) for r in distributed]
    print(
        f"\nmini grid: {len(jobs)} jobs (clean; mcd, rcml; text, multimodal; {args.seeds} seeds; {args.epochs} epochs)"
    )
    print(f"cores {os.cpu_count()}, 1-minute load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}")
    print(f"warm-up (build clean, embed its texts, once): {warm_up:.1f} s")
    threads = torch.get_num_threads()
    print(f"sequential:      {sequential_seconds:6.1f} s wall, {sequential_cpu:6.1f} s CPU ({threads} threads)")
    print(f"  on 1 thread:   {one_thread_seconds:6.1f} s wall, {one_thread_cpu:6.1f} s CPU")
    print(f"ray, 2 workers:  {ray_seconds:6.1f} s wall, {ray_cpu:6.1f} s CPU, after {start_up:.1f} s of Ray start-up")
    with_start_up = sequential_seconds / (ray_seconds + start_up)
    print(f"speedup: {sequential_seconds / ray_seconds:.2f}x ({with_start_up:.2f}x counting Ray's start-up)")
    print(f"speedup over sequential on 1 thread: {one_thread_seconds / ray_seconds:.2f}x")
    print(f"same numbers: {same}")


if __name__ == "__main__":
    main()
