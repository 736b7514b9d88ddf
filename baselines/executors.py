"""Where the benchmark's tasks run: one after another in this process (`sequential`, the default), as Ray tasks on a
local Ray instance or an existing Ray cluster (`ray`), or as a SLURM job array through submitit (`slurm`).

`execute` calls `function(*task)` for every task, each independent of the others, and yields each return value as
soon as its task is done (in the order tasks finish). A distributed task sets torch's CPU threads to
`ExecutorConfig.threads()` and asks its scheduler for as many CPUs, so that the tasks sharing a machine do not
oversubscribe its cores. Ray and submitit are imported only when chosen (the `distributed` extra installs them).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

EXECUTORS = ("sequential", "ray", "slurm")
SUBMITIT_CLUSTERS = ("slurm", "local")  # local: submitit's executor of subprocesses on this machine, for testing
POLL_SECONDS = 1.0  # how often submitit's jobs are asked whether they are done


@dataclass
class ExecutorConfig:
    kind: str = "sequential"
    workers: int = 2  # tasks at once on a local Ray instance
    address: str | None = None  # an existing Ray cluster ("auto", "ray://host:10001"); None starts a local instance
    # torch threads (and CPUs asked for) per task; None: local cores / workers, or torch's default when sequential.
    # The numbers of a job depend on it (reductions round differently on another thread count), not on the executor.
    threads_per_job: int | None = None
    slurm_partition: str | None = None  # None: the cluster's default partition
    slurm_time: int = 120  # minutes a task may run
    slurm_mem_gb: float = 8.0
    slurm_parallelism: int = 64  # array tasks running at once
    submitit_cluster: str = "slurm"

    def threads(self) -> int:
        return self.threads_per_job or max(1, (os.cpu_count() or 1) // self.workers)


def execute(function: Callable, tasks: list[tuple], config: ExecutorConfig, folder: Path) -> Iterator:
    """`function(*task)` of every task, yielded as each is done; `folder` receives submitit's job files and logs."""
    if config.kind not in EXECUTORS:
        raise ValueError(f"executor {config.kind!r}: choose from {', '.join(EXECUTORS)}")
    if not tasks:
        return iter(())
    run = {"sequential": _sequential, "ray": _ray, "slurm": _submitit}[config.kind]
    return run(function, tasks, config, folder)


def _sequential(function: Callable, tasks: list[tuple], config: ExecutorConfig, _folder: Path) -> Iterator:
    threads = config.threads_per_job  # None: torch's default, every core
    for task in tasks:
        yield function(*task) if threads is None else _with_threads(threads, function, *task)


def _with_threads(threads: int, function: Callable, *task):
    """`function(*task)` on `threads` CPU threads (torch's setting for the rest of the process: a worker's, or this
    one's when sequential)."""
    import torch  # here, so that the command line reads EXECUTORS without loading torch

    torch.set_num_threads(threads)
    return function(*task)


def _ray(function: Callable, tasks: list[tuple], config: ExecutorConfig, _folder: Path) -> Iterator:
    """Ray tasks; a Ray session already started in this process is used as it is, else one is started (local, with
    `workers` x `threads()` CPUs, or connected to `address`) and shut down at the end."""
    import ray

    started = not ray.is_initialized()
    if started and config.address:
        ray.init(address=config.address)
    elif started:
        ray.init(num_cpus=config.workers * config.threads(), include_dashboard=False)
    try:
        remote = ray.remote(_with_threads).options(num_cpus=config.threads())
        pending = [remote.remote(config.threads(), function, *task) for task in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()


def _submitit(function: Callable, tasks: list[tuple], config: ExecutorConfig, folder: Path) -> Iterator:
    """One submitit job array (on SLURM, or on this machine with `submitit_cluster="local"`)."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=config.submitit_cluster)
    partition = {"slurm_partition": config.slurm_partition} if config.slurm_partition else {}
    executor.update_parameters(
        name="luma-benchmark",
        timeout_min=config.slurm_time,
        cpus_per_task=config.threads(),
        mem_gb=config.slurm_mem_gb,
        slurm_array_parallelism=config.slurm_parallelism,
        **partition,
    )
    jobs = executor.map_array(functools.partial(_with_threads, config.threads(), function), *zip(*tasks, strict=True))
    for job in submitit.helpers.as_completed(jobs, poll_frequency=POLL_SECONDS):
        yield job.result()
