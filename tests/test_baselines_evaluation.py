"""`luma evaluate`: a real build of the mini source, a seeded model's predictions, the report against direct metric
calls, the command line, and clear errors for bad files."""

import json
import re

import datasets
import numpy as np
import pandas as pd
import pytest
from test_builder import build

from baselines import metrics
from baselines.evaluation import evaluate_predictions, read_predictions
from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.cli import main
from luma_builders.schema import provenance_flags

# Half of the records noised per modality and 30% of the labels switched: every such flag has both classes.
PARAMETERS = {"image_noise_ratio": 0.5, "audio_noise_ratio": 0.5, "text_noise_ratio": 0.5, "label_switch_prob": 0.3}
CLI_PARAMETERS = [f"{key}={value}" for key, value in PARAMETERS.items()]


@pytest.fixture(scope="module")
def variant(mini_source, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    builder = build(mini_source, cache, "sample_noise", **PARAMETERS)
    records = datasets.concatenate_datasets([builder.as_dataset(split) for split in ("test", "ood")])
    return records, cache


def model_predictions(records, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A seeded model: mostly right on in-distribution records (less so on noised ones), diffuse on OOD ones."""
    rng = np.random.default_rng(seed)
    rows = records.select_columns(["id", "clean_label", "is_ood", "image_noise"]).to_list()
    probs = rng.dirichlet(np.full(NUM_ID_CLASSES, 0.3), size=len(rows))
    for i, row in enumerate(rows):
        if not row["is_ood"]:
            weight = 0.3 if row["image_noise"] else 0.8
            probs[i] = weight * np.eye(NUM_ID_CLASSES)[row["clean_label"]] + (1 - weight) * probs[i]
    epistemic = np.array([row["is_ood"] for row in rows]) + rng.random(len(rows))
    table = pd.DataFrame(probs, columns=[f"p_{k}" for k in range(NUM_ID_CLASSES)])
    table.insert(0, "id", [row["id"] for row in rows])
    table["u_epistemic"] = epistemic
    # Shuffled rows: the join is by id, not by position.
    order = rng.permutation(len(rows))
    return table.iloc[order].reset_index(drop=True), probs, epistemic


def test_report_matches_direct_metric_calls(variant):
    records, _ = variant
    table, probs, epistemic = model_predictions(records)
    report = evaluate_predictions(table, records)
    rows = records.to_pandas()
    known = ~rows["is_ood"].to_numpy()
    labels, clean = rows["label"].to_numpy(), rows["clean_label"].to_numpy()
    splits = rows["id"].str.split("-").str[0]
    assert report["records"] == {
        "split_ood": int((splits == "ood").sum()),
        "split_test": int((splits == "test").sum()),
        "in_distribution": int(known.sum()),
        "out_of_distribution": int((~known).sum()),
    }
    assert report["records"]["split_ood"] == report["records"]["out_of_distribution"] > 0
    assert report["classification"] == {
        "accuracy": metrics.accuracy(probs[known], labels[known]),
        "accuracy_clean_label": metrics.accuracy(probs[known], clean[known]),
        "nll": metrics.nll(probs[known], labels[known]),
        "brier": metrics.brier(probs[known], labels[known]),
        "ece": metrics.ece(probs[known], labels[known]),
    }
    assert report["classification"]["accuracy_clean_label"] > report["classification"]["accuracy"]
    max_softmax = 1 - probs.max(axis=1)
    for name, score in {"max_softmax": max_softmax, "epistemic": epistemic}.items():
        assert report["selective"][name] == {
            "aurc": metrics.aurc(probs[known], labels[known], score[known]),
            "augrc": metrics.augrc(probs[known], labels[known], score[known]),
        }
        assert report["ood_detection"][name] == {
            "auroc": metrics.auroc(score, ~known),
            "aupr": metrics.aupr(score, ~known),
            "fpr95": metrics.fpr95(score, ~known),
        }
    assert report["ood_detection"]["epistemic"]["auroc"] > 0.8


def test_noise_detection_per_flag_within_test(variant):
    records, _ = variant
    table, probs, epistemic = model_predictions(records, seed=1)
    report = evaluate_predictions(table, records)
    rows = records.select_columns([c for c in records.column_names if c not in ("image", "audio")]).to_list()
    tested = np.array([row["id"].startswith("test-") and not row["is_ood"] for row in rows])
    flags = {flag: np.array([provenance_flags(row)[flag] for row in rows])[tested] for flag in provenance_flags({})}
    labels = np.array([row["label"] for row in rows])[tested]
    scores = {
        "max_softmax": 1 - probs[tested].max(axis=1),
        "epistemic": epistemic[tested],
        "one_minus_p_label": 1 - probs[tested][np.arange(tested.sum()), labels],
    }
    measured = {flag for flag, values in flags.items() if 0 < values.sum() < len(values)}
    assert {"label_switched", "image_noise", "audio_noise", "text_noise"} <= measured
    assert set(report["noise_detection"]) == measured
    for flag in measured:
        for name, score in scores.items():
            assert report["noise_detection"][flag][name] == metrics.auroc(score, flags[flag])
    # The model is less sure of image-noised records, and the label-aware score sees switched labels.
    assert report["noise_detection"]["image_noise"]["max_softmax"] > 0.8
    assert report["noise_detection"]["label_switched"]["one_minus_p_label"] > 0.8
    assert report["skipped"] == [
        f"noise detection of {flag}: no test record is flagged" for flag in flags.keys() - measured
    ]
    assert report["skipped"]  # conflict: the variant has none
    # Plain rows give the same report as the dataset.
    assert evaluate_predictions(table, rows) == report


def test_probs_list_column_and_csv(variant, tmp_path):
    records, _ = variant
    table, probs, _ = model_predictions(records, seed=2)
    expected = evaluate_predictions(table, records)
    table.to_parquet(tmp_path / "p.parquet")
    assert evaluate_predictions(read_predictions(tmp_path / "p.parquet"), records) == expected
    listed = table[["id", "u_epistemic"]].assign(probs=[list(row) for row in table.filter(like="p_").to_numpy()])
    listed.to_parquet(tmp_path / "listed.parquet")
    assert evaluate_predictions(read_predictions(tmp_path / "listed.parquet"), records) == expected
    listed.assign(probs=listed["probs"].map(json.dumps)).to_csv(tmp_path / "listed.csv", index=False)
    csv_report = evaluate_predictions(read_predictions(tmp_path / "listed.csv"), records)
    assert csv_report["classification"] == pytest.approx(expected["classification"], abs=1e-12)
    table.to_csv(tmp_path / "p.csv", index=False)
    assert evaluate_predictions(read_predictions(tmp_path / "p.csv"), records)["classification"] == pytest.approx(
        expected["classification"], abs=1e-12
    )


def test_cli_prints_and_writes_the_report(variant, mini_source, tmp_path, capsys):
    records, cache = variant
    table, _, _ = model_predictions(records, seed=3)
    table.to_parquet(tmp_path / "predictions.parquet")
    out = tmp_path / "report.json"
    argv = ["evaluate", str(tmp_path / "predictions.parquet"), "--config", "sample_noise", "--source", str(mini_source)]
    main([*argv, "--cache-dir", str(cache), "--out", str(out), *CLI_PARAMETERS])
    written = json.loads(out.read_text())
    expected = evaluate_predictions(table, records)
    assert {k: written[k] for k in expected} == json.loads(json.dumps(expected))
    assert written["config"] == "sample_noise" and written["parameters"]["label_switch_prob"] == "0.3"
    printed = capsys.readouterr().out
    assert "accuracy_clean_label" in printed and "OOD detection" in printed and "noise detection AUROC" in printed
    assert f"{expected['classification']['ece']:.4f}" in printed
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]  # no temporary file left beside it


def damaged(table: pd.DataFrame, how: str) -> pd.DataFrame:
    table = table.copy()
    if how == "no id":
        return table.drop(columns="id")
    if how == "missing":
        return table.drop(index=5)
    if how == "unknown":
        table.loc[3, "id"] = "test-99999"
    elif how == "duplicate":
        table.loc[3, "id"] = table.loc[4, "id"]
    elif how == "sum":
        table.loc[7, "p_0"] += 0.01
    elif how == "classes":
        return table.drop(columns="p_41")
    elif how == "negative":
        table.loc[2, "p_1"] = -0.5
    elif how == "uncertainty":
        table.loc[6, "u_epistemic"] = np.nan
    return table


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no id", "no column 'id'"),
        ("missing", "no prediction for 1 records"),
        ("unknown", r"row 3 \('test-99999'\)"),
        ("duplicate", r"duplicate ids at rows \[3, 4\]"),
        ("sum", "row 7 .*sum to 1.01"),
        ("classes", r"missing \['p_41'\]"),
        ("negative", "row 2 .*class 1: -0.5 is not a probability"),
        ("uncertainty", "row 6 .*column 'u_epistemic'"),
    ],
)
def test_bad_predictions_name_the_file_row_and_column(variant, tmp_path, how, message):
    records, _ = variant
    table, _, _ = model_predictions(records, seed=4)
    path = tmp_path / "bad.parquet"
    damaged(table, how).to_parquet(path)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*{message}"):
        evaluate_predictions(read_predictions(path), records, name=str(path))


def test_bad_files_on_the_command_line(variant, mini_source, tmp_path):
    records, cache = variant
    (tmp_path / "p.txt").write_text("id\n")
    with pytest.raises(SystemExit, match=r"p.txt: expected a .parquet or .csv"):
        main(["evaluate", str(tmp_path / "p.txt"), "--config", "sample_noise"])
    with pytest.raises(SystemExit, match="nothing.csv: no such predictions file"):
        main(["evaluate", str(tmp_path / "nothing.csv"), "--config", "sample_noise"])
    table, _, _ = model_predictions(records, seed=5)
    damaged(table, "sum").to_csv(tmp_path / "bad.csv", index=False)
    argv = ["evaluate", str(tmp_path / "bad.csv"), "--config", "sample_noise", "--source", str(mini_source)]
    with pytest.raises(SystemExit, match=r"error: .*bad.csv: row 7 .*sum to 1.01"):
        main([*argv, "--cache-dir", str(cache), *CLI_PARAMETERS])
