"""`luma evaluate`: the full report for any model's per-record predictions on a built variant, as WILDS does.

A predictions table has a column `id` (the record's stable id, `<split>-<index>`), the probabilities of the 42
in-distribution classes as columns `p_0` .. `p_41` (or one column `probs` holding a list), and optional uncertainty
columns `u_<name>` (higher = less certain). It is joined by id to the records of the variant's test and ood splits.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from baselines import metrics
from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.schema import PROVENANCE_FLAGS, provenance_flags

PROBS_COLUMN = "probs"
PROB_PREFIX = "p_"
UNCERTAINTY_PREFIX = "u_"
SUM_TOLERANCE = 1e-3
NLL_FLOOR = 1e-12  # a zero probability on the true class would make the NLL infinite (not JSON)
MAX_SOFTMAX = "max_softmax"  # the default score, 1 - max_k p_k
LABEL_AWARE = "one_minus_p_label"  # 1 - p(observed label | x): a label-free score cannot see a switched label
RECORD_FIELDS = ("id", "label", "clean_label", "is_ood", *PROVENANCE_FLAGS.values())
EVALUATED_SPLITS = ("test", "ood")


def read_predictions(path) -> pd.DataFrame:
    """A predictions file: Parquet (`.parquet`, `.pq`) or CSV (`.csv`); a `probs` column of a CSV holds JSON lists."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such predictions file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".csv":
        table = pd.read_csv(path, dtype={"id": str})
        if PROBS_COLUMN in table:
            table[PROBS_COLUMN] = [json.loads(text) for text in table[PROBS_COLUMN]]
        return table
    raise ValueError(f"{path}: expected a .parquet or .csv predictions file, got {suffix or 'no suffix'!r}")


def _records_table(records) -> pd.DataFrame:
    """id, label, clean_label, is_ood, split and one boolean column per provenance flag whose field is present."""
    if hasattr(records, "select_columns"):  # a datasets.Dataset: leave the images and audio undecoded
        records = records.select_columns([c for c in RECORD_FIELDS if c in records.column_names]).to_list()
    records = list(records)
    missing = [field for field in ("id", "label", "clean_label", "is_ood") if records and field not in records[0]]
    if not records or missing:
        raise ValueError(f"records must be a non-empty list of rows with id, label, clean_label, is_ood; {missing=}")
    table = pd.DataFrame({field: [row[field] for row in records] for field in ("id", "label", "clean_label")})
    table["is_ood"] = np.array([bool(row["is_ood"]) for row in records])
    table["split"] = table["id"].str.rsplit("-", n=1).str[0]
    present = [flag for flag, field in PROVENANCE_FLAGS.items() if field in records[0]]
    for flag in present:
        table[f"flag_{flag}"] = [provenance_flags(row)[flag] for row in records]
    return table


def _positions(predictions: pd.DataFrame, records: pd.DataFrame, name: str) -> np.ndarray:
    """For each record, its row in `predictions`; every record needs exactly one row and every row a record."""
    ids = predictions["id"].astype(str)
    duplicated = ids[ids.duplicated(keep=False)]
    if len(duplicated):
        raise ValueError(
            f"{name}: duplicate ids at rows {duplicated.index[:5].tolist()}: {sorted(set(duplicated))[:5]}"
        )
    unknown = ids[~ids.isin(set(records["id"]))]
    if len(unknown):
        rows = ", ".join(f"row {i} ({value!r})" for i, value in unknown.head(5).items())
        raise ValueError(f"{name}: {len(unknown)} ids are not records of the variant's test or ood split: {rows}")
    missing = records["id"][~records["id"].isin(set(ids))]
    if len(missing):
        raise ValueError(f"{name}: no prediction for {len(missing)} records, e.g. {missing.head(5).tolist()}")
    return pd.Series(np.arange(len(ids)), index=ids.to_numpy()).loc[records["id"]].to_numpy()


def _probability_columns(predictions: pd.DataFrame, name: str) -> np.ndarray:
    """(N, K) float64 from `probs` lists or `p_<k>` columns, K = the number of in-distribution classes."""
    if PROBS_COLUMN in predictions:
        lengths = predictions[PROBS_COLUMN].map(len)
        wrong = lengths[lengths != NUM_ID_CLASSES]
        if len(wrong):
            row = wrong.index[0]
            raise ValueError(
                f"{name}: row {row} (id {predictions['id'].iloc[row]!r}), column {PROBS_COLUMN!r}: "
                f"{wrong.iloc[0]} probabilities, expected {NUM_ID_CLASSES} (the in-distribution classes)"
            )
        return np.stack(predictions[PROBS_COLUMN].map(np.asarray).to_list()).astype(np.float64)
    given = [c for c in predictions if c.startswith(PROB_PREFIX)]
    expected = [f"{PROB_PREFIX}{k}" for k in range(NUM_ID_CLASSES)]
    if sorted(given) != sorted(expected):
        raise ValueError(
            f"{name}: expected probability columns p_0 .. p_{NUM_ID_CLASSES - 1} ({NUM_ID_CLASSES} classes) or one "
            f"column {PROBS_COLUMN!r}; missing {sorted(set(expected) - set(given))[:5]}, "
            f"unexpected {sorted(set(given) - set(expected))[:5]}"
        )
    return predictions[expected].to_numpy(dtype=np.float64)


def _probabilities(predictions: pd.DataFrame, name: str) -> np.ndarray:
    """Checked probability rows: finite, non-negative, each summing to 1 within SUM_TOLERANCE."""
    probs = _probability_columns(predictions, name)
    bad = ~np.isfinite(probs) | (probs < 0)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: row {row} (id {predictions['id'].iloc[row]!r}), class {column}: {probs[row, column]} is not a "
            "probability (finite, >= 0)"
        )
    off = np.abs(probs.sum(axis=1) - 1.0)
    if (off > SUM_TOLERANCE).any():
        row = int(np.argmax(off > SUM_TOLERANCE))
        raise ValueError(
            f"{name}: row {row} (id {predictions['id'].iloc[row]!r}): probabilities sum to {probs[row].sum():.6f}, "
            f"not 1 within {SUM_TOLERANCE}"
        )
    return probs


def _uncertainties(predictions: pd.DataFrame, name: str) -> dict[str, np.ndarray]:
    """The `u_<name>` columns as finite float64 arrays, keyed by <name>."""
    scores = {}
    for column in (c for c in predictions if c.startswith(UNCERTAINTY_PREFIX)):
        values = pd.to_numeric(predictions[column], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            row = int(np.argmax(~np.isfinite(values)))
            raise ValueError(
                f"{name}: row {row} (id {predictions['id'].iloc[row]!r}), column {column!r}: "
                f"{predictions[column].iloc[row]!r} is not a finite number"
            )
        scores[column.removeprefix(UNCERTAINTY_PREFIX)] = values
    return scores


def _classification(probs: np.ndarray, records: pd.DataFrame) -> dict[str, float]:
    labels, clean = records["label"].to_numpy(), records["clean_label"].to_numpy()
    return {
        "accuracy": metrics.accuracy(probs, labels),
        "accuracy_clean_label": metrics.accuracy(probs, clean),
        "nll": metrics.nll(np.clip(probs, NLL_FLOOR, 1.0), labels),
        "brier": metrics.brier(probs, labels),
        "ece": metrics.ece(probs, labels),
    }


def _detection(scores: dict[str, np.ndarray], positives: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        name: {
            "auroc": metrics.auroc(values, positives),
            "aupr": metrics.aupr(values, positives),
            "fpr95": metrics.fpr95(values, positives),
        }
        for name, values in scores.items()
    }


def _noise_detection(scores: dict[str, np.ndarray], records: pd.DataFrame, skipped: list[str]) -> dict:
    """Per provenance flag, the AUROC of each score for telling the flagged records from the others."""
    flags = {c.removeprefix("flag_"): records[c].to_numpy() for c in records if c.startswith("flag_")}
    measurable = {}
    for flag, values in flags.items():
        if values.all() or not values.any():
            skipped.append(f"noise detection of {flag}: {'every' if values.all() else 'no'} test record is flagged")
        else:
            measurable[flag] = values
    if not measurable:
        return {}
    aurocs = metrics.detection_aurocs(scores, measurable)
    return {flag: {score: aurocs[score, flag] for score in scores} for flag in measurable}


def evaluate_predictions(predictions: pd.DataFrame, records, name: str = "predictions") -> dict:
    """The report of one model's predictions on the records of a variant's test and ood splits.

    `records` is a `datasets.Dataset` or a list of rows with id, label, clean_label, is_ood and the provenance
    fields; `name` (the file) prefixes every error. Classification and selective metrics are over the
    in-distribution records; OOD detection over all records (is_ood = positive); noise detection over the
    in-distribution records of the test split. Scores: max_softmax (1 - max_k p_k), each u_<name> column, and for
    noise detection also one_minus_p_label. Every value is JSON-serialisable.
    """
    records = _records_table(records)
    predictions = predictions.reset_index(drop=True)
    if "id" not in predictions:
        raise ValueError(f"{name}: no column 'id' (the record's id, e.g. 'test-00042'); columns: {list(predictions)}")
    probs, uncertainties = _probabilities(predictions, name), _uncertainties(predictions, name)
    positions = _positions(predictions, records, name)
    probs = probs[positions]
    scores = {MAX_SOFTMAX: 1.0 - probs.max(axis=1), **{k: v[positions] for k, v in uncertainties.items()}}
    known = ~records["is_ood"].to_numpy()
    labels = records["label"].to_numpy()
    skipped = []
    report = {
        "records": {
            **{f"split_{split}": int((records["split"] == split).sum()) for split in sorted(set(records["split"]))},
            "in_distribution": int(known.sum()),
            "out_of_distribution": int((~known).sum()),
        },
        "classification": _classification(probs[known], records[known]),
        "selective": {
            score: {
                "aurc": metrics.aurc(probs[known], labels[known], values[known]),
                "augrc": metrics.augrc(probs[known], labels[known], values[known]),
            }
            for score, values in scores.items()
        },
    }
    if known.all():
        skipped.append("OOD detection: no record has is_ood true")
    report["ood_detection"] = {} if known.all() else _detection(scores, ~known)
    tested = known & (records["split"] == "test").to_numpy()
    label_aware = {LABEL_AWARE: 1.0 - probs[tested][np.arange(tested.sum()), labels[tested]]}
    test_scores = {**{k: v[tested] for k, v in scores.items()}, **label_aware}
    report["noise_detection"] = _noise_detection(test_scores, records[tested], skipped)
    report["skipped"] = skipped
    return report


def format_report(report: dict) -> str:
    """The report as readable tables (the JSON holds the same numbers)."""
    lines = ["records: " + ", ".join(f"{k} {v}" for k, v in report["records"].items()), "", "classification"]
    lines += [f"  {metric:<22} {value:.4f}" for metric, value in report["classification"].items()]
    sections = [
        ("selective classification (lower is better)", report["selective"]),
        ("OOD detection (is_ood = positive)", report["ood_detection"]),
    ]
    sections += [
        (f"noise detection AUROC: {flag}", {s: {"auroc": v} for s, v in by_score.items()})
        for flag, by_score in report["noise_detection"].items()
    ]
    for title, table in sections:
        if not table:
            continue
        columns = list(next(iter(table.values())))
        lines += ["", title, f"  {'score':<22} " + " ".join(f"{c:>8}" for c in columns)]
        lines += [f"  {score:<22} " + " ".join(f"{row[c]:>8.4f}" for c in columns) for score, row in table.items()]
    lines += ["", *(f"skipped: {reason}" for reason in report["skipped"])]
    return "\n".join(lines).rstrip()
