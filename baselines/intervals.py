"""Bootstrap intervals and paired tests for benchmark metrics, vectorised over replicates.

A replicate resamples the records with replacement (stratified: in-distribution and OOD records separately, so that
every replicate has both), represented as a (B, N) matrix of counts. Each metric below takes such a matrix and gives
one value per replicate; with a single row of ones it gives the plain metric, equal to `baselines.metrics`'s. The same
replicates are used for every run and method on one variant, so the seeds of a cell are averaged replicate by
replicate and two methods are compared on the same resampled records (a paired test).
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15  # as baselines.metrics.ece


def bootstrap_counts(strata: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, N) resampling counts of N records, each stratum (equal values of `strata`, e.g. is_ood) resampled
    within itself, so that every replicate keeps each stratum's size."""
    strata = np.asarray(strata)
    counts = np.zeros((replicates, len(strata)), np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=replicates)
    return counts


def weighted_mean(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B,) means of per-record `values` (N,) under each replicate's counts (B, N)."""
    return counts @ np.asarray(values, dtype=np.float64) / np.maximum(counts.sum(axis=1), 1)


def weighted_ece(confidence: np.ndarray, correct: np.ndarray, counts: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """(B,) expected calibration errors with equal-width confidence bins, (lower, upper] as `metrics.ece`."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    member = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    onehot = np.eye(bins)[member]  # (N, bins)
    weight = counts @ onehot  # (B, bins) records per bin
    gap = counts @ (onehot * (np.asarray(confidence, float) - np.asarray(correct, float))[:, None])
    return np.abs(gap).sum(axis=1) / np.maximum(weight.sum(axis=1), 1)


def weighted_auroc(scores: np.ndarray, positives: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B,) areas under the ROC curve of `scores` for `positives`, ties counting one half (Mann-Whitney)."""
    scores, positives = np.asarray(scores, np.float64), np.asarray(positives, bool)
    order = np.argsort(scores, kind="stable")
    sorted_scores, is_positive = scores[order], positives[order]
    counts = counts[:, order].astype(np.float64)
    negative = counts * ~is_positive
    # Negatives strictly below each record, and tied with it: cumulative sums over runs of equal scores.
    starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts) - 1
    below_group = np.cumsum(negative, axis=1) - negative
    first_of_group = np.flatnonzero(starts)
    below = below_group[:, first_of_group][:, group]
    tied = np.add.reduceat(negative, first_of_group, axis=1)[:, group]
    pairs = (counts * is_positive) * (below + 0.5 * tied)
    n_positive, n_negative = (counts * is_positive).sum(axis=1), negative.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pairs.sum(axis=1) / (n_positive * n_negative)


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates ignored)."""
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def paired_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference" from replicates of a difference: twice the share of replicates
    on the far side of zero (at most 1)."""
    finite = differences[np.isfinite(differences)]
    if not len(finite):
        return float("nan")
    return float(min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean())))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (NaN stays NaN and does not count)."""
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = p.copy()
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
