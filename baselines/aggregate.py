"""Runs -> cells: each metric's mean and standard deviation over the seeds of a cell, a bootstrap 95% interval, and
paired comparisons between methods with Holm-adjusted p-values.

An interval is a two-level bootstrap: each replicate resamples the cell's runs (seeds) and the test (and OOD) records,
stratified by is_ood, and averages the metric over the resampled runs; so it covers both the training seeds and the
finite test set. Every cell of one variant uses the same replicates, which pairs the comparisons between methods.
Metrics that are not a function of resampled records (convergence, temperature, conformal) get the mean and standard
deviation only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from baselines.benchmark import RunResult
from baselines.intervals import (
    bootstrap_counts,
    holm,
    interval,
    paired_p_value,
    weighted_auroc,
    weighted_ece,
    weighted_mean,
)
from luma_builders.rng import generator

COMPARED = ("accuracy", "ece", "ood_auroc_epistemic")  # the metrics the paired tests cover
SIGNIFICANCE = 0.05


@dataclass
class Stat:
    mean: float
    std: float
    runs: int
    low: float = float("nan")
    high: float = float("nan")


@dataclass
class Cell:
    runs: list[RunResult]
    stats: dict[str, Stat] = field(default_factory=dict)
    replicates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Comparison:
    variant: str
    parameters: tuple
    modality: str
    metric: str
    first: str
    second: str
    difference: float  # mean of first - mean of second
    low: float
    high: float
    p_value: float
    p_holm: float = float("nan")


def metric_replicates(key: str, records: dict[str, np.ndarray], counts: np.ndarray) -> np.ndarray | None:
    """(B,) values of metric `key` under each replicate's counts, or None when `key` is not resampled."""
    known = ~records["is_ood"]
    if key in ("accuracy", "accuracy_clean_label"):
        column = "correct" if key == "accuracy" else "correct_clean_label"
        return weighted_mean(records[column][known], counts[:, known])
    if key == "nll":
        return weighted_mean(records["nll"][known], counts[:, known])
    if key == "ece":
        return weighted_ece(records["confidence"][known], records["correct"][known], counts[:, known])
    if key.startswith("ood_auroc_"):
        return weighted_auroc(records[f"score:{key.removeprefix('ood_auroc_')}"], records["is_ood"], counts)
    if key.startswith("detect_"):
        tested = records["tested"]
        for flag in (k.removeprefix("flag:") for k in records if k.startswith("flag:")):
            score = key.removeprefix(f"detect_{flag}_")
            if score != key and f"score:{score}" in records:
                return weighted_auroc(
                    records[f"score:{score}"][tested], records[f"flag:{flag}"][tested], counts[:, tested]
                )
    return None


def aggregate(results: list[RunResult], replicates: int = 1000, seed: int = 0) -> dict[tuple, Cell]:
    """Cells keyed by (variant, parameters, method, modality), every metric summarised over the cell's runs."""
    cells: dict[tuple, Cell] = {}
    for result in results:
        cells.setdefault(result.job.cell, Cell([])).runs.append(result)
    for (variant, *_), cell in cells.items():
        records = bootstrap_counts(cell.runs[0].records["is_ood"], replicates, generator(seed, "records", variant))
        runs = bootstrap_counts(np.zeros(len(cell.runs)), replicates, generator(seed, "runs", variant, len(cell.runs)))
        _summarise(cell, records, runs)
    return cells


def _summarise(cell: Cell, record_counts: np.ndarray, run_counts: np.ndarray) -> None:
    """Every metric's Stat; for resampled metrics also the (B,) replicates: per run under `record_counts` (B, N),
    averaged with the resampled runs' `run_counts` (B, R)."""
    for key in sorted({k for run in cell.runs for k in run.metrics}):
        values = np.array([run.metrics.get(key, np.nan) for run in cell.runs], dtype=np.float64)
        stat = Stat(float(np.nanmean(values)) if np.isfinite(values).any() else float("nan"), _std(values), len(values))
        per_run = [metric_replicates(key, run.records, record_counts) for run in cell.runs]
        if per_run[0] is not None:
            cell.replicates[key] = (run_counts * np.stack(per_run, axis=1)).sum(axis=1) / len(cell.runs)
            stat.low, stat.high = interval(cell.replicates[key])
        cell.stats[key] = stat


def _std(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else 0.0


def compare(cells: dict[tuple, Cell], metrics: tuple[str, ...] = COMPARED) -> list[Comparison]:
    """Every pair of methods on the same variant, level and modality, for each of `metrics`: the difference of their
    means, its paired bootstrap interval and p-value, Holm-adjusted over all the comparisons returned."""
    groups: dict[tuple, dict[str, Cell]] = {}
    for (variant, parameters, method, modality), cell in cells.items():
        groups.setdefault((variant, parameters, modality), {})[method] = cell
    comparisons = []
    for (variant, parameters, modality), by_method in groups.items():
        for metric in metrics:
            for first, second in combinations(by_method, 2):
                a, b = by_method[first], by_method[second]
                if metric not in a.replicates or metric not in b.replicates:
                    continue
                difference = a.replicates[metric] - b.replicates[metric]
                low, high = interval(difference)
                point = a.stats[metric].mean - b.stats[metric].mean
                comparisons.append(
                    Comparison(
                        variant,
                        parameters,
                        modality,
                        metric,
                        first,
                        second,
                        point,
                        low,
                        high,
                        paired_p_value(difference),
                    )
                )
    for comparison, adjusted in zip(comparisons, holm([c.p_value for c in comparisons]), strict=True):
        comparison.p_holm = adjusted
    return comparisons
