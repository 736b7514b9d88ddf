"""`luma benchmark --executor`: the same grid run one job after another, on a local Ray instance with two workers and
through submitit's local executor gives the same numbers; each job's result file is reused by a re-run with the same
settings, and not when a setting changed or the file is damaged."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from test_baselines_benchmark import FAST

from baselines.benchmark import (
    BenchmarkConfig,
    Job,
    RunResult,
    benchmark_jobs,
    job_groups,
    load_result,
    result_path,
    save_result,
)
from baselines.executors import ExecutorConfig, execute
from luma_builders.cli import main

GRID = ["--variants", "clean", "--methods", "mcd,mcd_posthoc", "--modalities", "text,multimodal", "--seeds", "1"]


def benchmark(source, out, *options):
    main(["benchmark", "--source", str(source), *GRID, *FAST, "--out", str(out), *options])


@pytest.fixture(scope="module")
def grids(mini_source, tmp_path_factory):
    """The grid run sequentially and by Ray with two local workers (one Ray session for the module), and the LUMA
    home whose caches then hold the built variant and its text embeddings."""
    outs = {name: tmp_path_factory.mktemp(name) for name in ("sequential", "ray", "home")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUMA_HOME", str(outs["home"]))  # inherited by the Ray workers
        # one torch thread per job both ways: the numbers depend on the thread count, not on the executor
        benchmark(mini_source, outs["sequential"], "--threads-per-job", "1")
        benchmark(mini_source, outs["ray"], "--executor", "ray", "--workers", "2")
    return outs


@pytest.fixture
def warm_caches(grids, monkeypatch):
    """The grids' LUMA home: the variant built, its texts embedded."""
    monkeypatch.setenv("LUMA_HOME", str(grids["home"]))


def runs(out) -> dict[str, dict]:
    """results.json's runs by job."""
    return {json.dumps(r["job"]): r["metrics"] for r in json.loads((out / "results.json").read_text())["runs"]}


def result_files(out) -> dict[str, tuple[int, int]]:
    """Every result file under out/runs: name -> (inode, mtime), which change whenever a file is written."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "runs").glob("*.npz")}


def test_ray_with_two_workers_gives_the_sequential_numbers(grids):
    sequential, ray = runs(grids["sequential"]), runs(grids["ray"])
    assert len(sequential) == 3 and sequential.keys() == ray.keys()
    # Same seeds and thread count (1 per Ray worker on 2 cores, as asked of the sequential run): the same numbers.
    assert json.dumps(sequential) == json.dumps(ray)
    assert result_files(grids["sequential"]).keys() == result_files(grids["ray"]).keys()
    for name in result_files(grids["sequential"]):
        with np.load(grids["sequential"] / "runs" / name) as a, np.load(grids["ray"] / "runs" / name) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert (grids["ray"] / "report.md").read_text() == (grids["sequential"] / "report.md").read_text()


def test_submitit_local_executor_runs_the_jobs_and_writes_the_report(grids, warm_caches, mini_source, tmp_path):
    options = ["--methods", "mcd", "--modalities", "text", "--seeds", "2", "--executor", "slurm"]
    benchmark(mini_source, tmp_path, *options, "--submitit-cluster", "local", "--slurm-time", "10")
    submitted, sequential = runs(tmp_path), runs(grids["sequential"])
    shared = submitted.keys() & sequential.keys()  # mcd text seed 0
    assert len(submitted) == 2 and len(shared) == 1 and all(submitted[job] == sequential[job] for job in shared)
    assert "## Convergence" in (tmp_path / "report.md").read_text()
    assert len(list((tmp_path / "submitit").glob("*_log.out"))) == 2  # each job in its own submitit job


def test_a_rerun_reads_finished_jobs_and_a_changed_setting_runs_again(
    grids, warm_caches, mini_source, tmp_path, capsys
):
    out = shutil.copytree(grids["sequential"], tmp_path / "out")
    before = result_files(out)
    benchmark(mini_source, out)
    assert "3 of 3 jobs already done" in capsys.readouterr().out
    assert result_files(out) == before and runs(out) == runs(grids["sequential"])

    benchmark(mini_source, out, "--methods", "mcd", "--modalities", "text", "--epochs", "1")
    assert "already done" not in capsys.readouterr().out
    after = result_files(out)
    assert {name: after[name] for name in before} == before and len(after) == len(before) + 1
    assert next(iter(runs(out).values()))["budget"] == 1


def test_a_damaged_result_file_is_run_again(grids, warm_caches, mini_source, tmp_path, capsys):
    out = shutil.copytree(grids["sequential"], tmp_path / "out")
    (text,) = (out / "runs").glob("clean-mcd-text-*.npz")
    text.write_bytes(text.read_bytes()[: text.stat().st_size // 2])  # cut short
    before = result_files(out)
    benchmark(mini_source, out)
    assert "2 of 3 jobs already done" in capsys.readouterr().out
    after = result_files(out)
    assert [name for name in before if after[name] != before[name]] == [text.name]
    assert runs(out) == runs(grids["sequential"])  # recomputed: the same numbers as the first time


def test_a_result_file_holds_its_job_and_is_read_only_for_the_same_job_and_settings(tmp_path, caplog):
    config = BenchmarkConfig(out=tmp_path, data_dir="/data/luma", epochs=3)
    job, other = Job("clean", "mcd", "text", seed=1), Job("clean", "mcd", "text", seed=2)
    records = {"label": np.arange(4), "correct": np.array([True, False, True, True]), "score:energy": np.ones(4) / 3}
    result = RunResult(job, {"accuracy": 0.75, "ood_auroc_energy": float("nan")}, records, {"bins": [0.5, 1.0]})
    path = save_result(result, config)
    loaded = load_result(job, config)
    assert loaded.metrics["accuracy"] == 0.75 and np.isnan(loaded.metrics["ood_auroc_energy"])
    assert loaded.reliability == result.reliability and loaded.records.keys() == records.keys()
    assert all(np.array_equal(loaded.records[k], v) and loaded.records[k].dtype == v.dtype for k, v in records.items())
    for changed in ({"epochs": 4}, {"mask_class_words": False}, {"data_dir": "/data/other"}):
        assert (
            result_path(job, replace(config, **changed)) != path
            and load_result(job, replace(config, **changed)) is None
        )
    assert (
        load_result(job, replace(config, bootstrap=10, executor=ExecutorConfig(kind="ray"))).metrics == loaded.metrics
    )
    shutil.copyfile(path, result_path(other, config))
    assert load_result(other, config) is None and "holds another job or settings" in caplog.text
    path.write_bytes(b"PK\x03\x04 not a zip")
    assert load_result(job, config) is None and "unreadable result file" in caplog.text


def test_post_hoc_fusion_runs_in_one_task_with_its_unimodal_jobs(tmp_path):
    config = BenchmarkConfig(out=tmp_path, variants=("clean",), methods=("mcd", "de", "mcd_posthoc"), seeds=2)
    jobs = benchmark_jobs(config)
    groups = job_groups(jobs)
    assert sorted((job for group in groups for job in group), key=jobs.index) == jobs
    fused = [group for group in groups if len(group) > 1]
    assert len(fused) == 2 and len(groups) == len(jobs) - 2 * 3
    for seed, group in enumerate(fused):
        unimodal = [Job("clean", "mcd", modality, seed) for modality in ("image", "audio", "text")]
        assert group == [*unimodal, Job("clean", "mcd_posthoc", "multimodal", seed)]


def test_an_unknown_executor_is_named():
    with pytest.raises(ValueError, match="executor 'spark': choose from sequential, ray, slurm"):
        execute(print, [()], ExecutorConfig(kind="spark"), folder=None)
