"""`luma benchmark` and `luma sweep` on a small mini source: the protocol (detection within one run, joint and
post-hoc fusion, convergence, both accuracy targets), seeds with intervals, the report, and dose-response sweeps."""

import json

import numpy as np
import pytest
import torch
from test_baselines_methods import quiet, synthetic

from baselines.benchmark import BenchmarkConfig, Job, Runner, RunResult
from baselines.data import TEXT_DIM
from baselines.methods import make_method
from baselines.sweep import dose_response, sweep_levels
from luma_builders.cli import main

FAST = ["--epochs", "2", "--mc-passes", "3", "--bootstrap", "50", "--ensemble-size", "2"]


@pytest.fixture(scope="module")
def benchmark_out(mini_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    argv = ["benchmark", "--source", str(mini_source), "--variants", "clean,label_noise_0.3"]
    main(
        [
            *argv,
            "--methods",
            "mcd,rcml,mcd_posthoc",
            "--modalities",
            "text,multimodal",
            "--seeds",
            "2",
            *FAST,
            "--out",
            str(out),
        ]
    )
    return out


def test_report_states_the_source_first_and_gives_intervals(benchmark_out):
    report = (benchmark_out / "report.md").read_text()
    first = report.splitlines()[0]
    assert first.startswith("**Source: the embedded synthetic mini source") and "not the published LUMA" in first
    assert "Table 1 (multimodal)" in report and "Table 2" not in report  # no comparison with the paper here
    headline = report.split("### clean: accuracy")[1].split("###")[0]
    assert "±" in headline and "[" in headline
    for section in ("## Convergence", "## Paired comparisons", "AUGRC epistemic", "conformal_coverage", "energy"):
        assert section in report
    for modality in ("text", "multimodal"):  # every figure for every modality set, PNG and PDF
        for stem in (f"reliability_clean_{modality}", f"ood_roc_clean_{modality}", f"uncertainty_{modality}"):
            assert (benchmark_out / f"{stem}.png").stat().st_size > 10_000 and f"({stem}.png)" in report
            assert (benchmark_out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_every_cell_has_each_seed_and_post_hoc_fusion_is_multimodal_only(benchmark_out):
    runs = json.loads((benchmark_out / "results.json").read_text())["runs"]
    cells = {}
    for run in runs:
        job = run["job"]
        cells.setdefault((job["variant"], job["method"], job["modality"]), []).append(job["seed"])
    assert all(sorted(seeds) == [0, 1] for seeds in cells.values())
    assert ("clean", "mcd_posthoc", "text") not in cells and ("clean", "mcd_posthoc", "multimodal") in cells
    assert len(runs) == 2 * 2 * 5
    by_key = {(r["job"]["variant"], r["job"]["method"], r["job"]["modality"], r["job"]["seed"]): r for r in runs}
    joint, posthoc = by_key["clean", "mcd", "multimodal", 0], by_key["clean", "mcd_posthoc", "multimodal", 0]
    assert (
        joint["metrics"]["accuracy"] != posthoc["metrics"]["accuracy"]
        or joint["metrics"]["nll"] != posthoc["metrics"]["nll"]
    )


def test_runs_report_both_accuracy_targets_label_aware_detection_and_convergence(benchmark_out):
    runs = json.loads((benchmark_out / "results.json").read_text())["runs"]
    noisy = [r["metrics"] for r in runs if r["job"]["variant"] == "label_noise_0.3"]
    clean = [r["metrics"] for r in runs if r["job"]["variant"] == "clean"]
    assert all("detect_label_switched_one_minus_p_label" in m for m in noisy)
    assert not any(k.startswith("detect_") for m in clean for k in m)  # nothing flagged: nothing to detect
    for m in noisy + clean:
        assert 0 <= m["accuracy_clean_label"] <= 1 and 1 <= m["best_epoch"] <= m["epochs_run"] <= m["budget"] == 2
        assert m["aurc_epistemic"] >= 0 and m["augrc_epistemic"] >= 0 and m["temperature"] > 0
    assert any(m["accuracy"] != m["accuracy_clean_label"] for m in noisy)
    assert all(m["accuracy"] == m["accuracy_clean_label"] for m in clean)


def test_detection_compares_records_within_one_run_of_a_half_noised_variant(mini_source, tmp_path):
    config = BenchmarkConfig(
        out=tmp_path, data_dir=str(mini_source), cache_dir=str(tmp_path / "cache"), epochs=1, mc_passes=2, seeds=1
    )
    result = Runner(config).run(Job("sample_noise_0.5", "mcd", "text"))
    flagged = result.records["flag:text_noise"][result.records["tested"]]
    assert 0 < flagged.mean() < 1  # both noisy and clean records in the same predictions
    for flag in ("image_noise", "audio_noise", "text_noise"):
        assert 0 <= result.metrics[f"detect_{flag}_epistemic"] <= 1
    image, text = result.records["flag:image_noise"], result.records["flag:text_noise"]
    assert (image != text).any()  # drawn independently per modality


def test_ensemble_members_share_one_training_set():
    data = synthetic(120, 4, seed=0, modalities=("text",))
    method = make_method("de", ("text",), quiet(epochs=1, seed=3), members=3, num_classes=4, text_dim=TEXT_DIM)
    histories = method.fit(data)
    assert all(torch.equal(h["val_indices"], histories[0]["val_indices"]) for h in histories)


def test_sweep_writes_a_dose_response_plot_and_spearman(mini_source, tmp_path):
    argv = ["sweep", "label_switch_prob=0,0.5", "--source", str(mini_source), "--methods", "mcd"]
    main([*argv, "--modalities", "text", "--seeds", "2", *FAST, "--out", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    assert "Dose-response sweep over `label_switch_prob`" in report and "ρ aleatoric" in report
    assert (tmp_path / "sweep_label_switch_prob.png").stat().st_size > 10_000
    assert (tmp_path / "sweep_label_switch_prob.pdf").exists()
    levels = {r["job"]["parameters"][0][1] for r in json.loads((tmp_path / "results.json").read_text())["runs"]}
    assert levels == {0.0, 0.5}


def test_dose_response_rho_follows_the_measures():
    results = []
    for level in (0.0, 0.1, 0.3):
        for seed in (0, 1):
            job = Job("clean", "mcd", "text", seed, 0, (("label_switch_prob", level),))
            metrics = {"accuracy": 1 - level + seed / 100, "mean_aleatoric": level, "mean_epistemic": 0.2}
            results.append(RunResult(job, metrics))
    from baselines.aggregate import Cell

    cells = {}
    for result in results:
        cells.setdefault(result.job.cell, Cell([])).runs.append(result)
    rho = dose_response(cells, "label_switch_prob")["mcd", "text"]["rho"]
    assert rho["accuracy"][0] < -0.8 and rho["mean_aleatoric"][0] == pytest.approx(1.0)
    assert np.isnan(rho["mean_epistemic"][0])  # constant: no rank correlation


@pytest.mark.parametrize(
    ("levels", "message"),
    [({"label_switch_prob": [0.1]}, "same number"), ({"audio_snr_min": [0, 1], "audio_snr_max": [0, 1, 2]}, "same")],
)
def test_sweep_levels_must_line_up(levels, message):
    with pytest.raises(ValueError, match=message):
        sweep_levels(levels)


def test_sweep_rejects_bad_levels_by_name(tmp_path):
    with pytest.raises(SystemExit, match="at least two levels"):
        main(["sweep", "label_switch_prob=0.1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="did you mean 'label_switch_prob'"):
        main(["sweep", "label_swich_prob=0,0.1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="label_switch_prob"):
        main(["sweep", "label_switch_prob=0,7", "--out", str(tmp_path)])
