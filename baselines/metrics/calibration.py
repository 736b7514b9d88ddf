"""Top-label calibration: reliability bins and the expected calibration error."""

import numpy as np

from baselines.metrics.inputs import labels_for, probabilities


def reliability_bins(probs, labels, num_bins: int = 15) -> dict[str, np.ndarray]:
    """Top-label confidence c_i = max_k p_ik and correctness a_i = [argmax_k p_ik = y_i] in equal-width bins.

    Bin b is (b / B, (b + 1) / B] (a confidence of exactly 1 falls in the last bin). Returns ``edges`` (B + 1,),
    and per bin ``confidence`` (mean c_i), ``accuracy`` (mean a_i), both NaN for an empty bin, and ``count``.
    """
    if not isinstance(num_bins, int | np.integer) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    probs = probabilities(probs)
    labels = labels_for(labels, *probs.shape)
    confidence = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # side="left" puts a confidence equal to an edge in the bin that edge closes; the clip keeps rows that sum to
    # 1 within rounding (a confidence of 1 + 1e-7) in the last bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=num_bins) / count
        mean_accuracy = np.bincount(index, weights=correct, minlength=num_bins) / count
    return {"edges": edges, "confidence": mean_confidence, "accuracy": mean_accuracy, "count": count}


def ece(probs, labels, num_bins: int = 15) -> float:
    """Expected calibration error (Naeini et al., 2015; Guo et al., 2017), top-label, L1:

    ECE = sum_b (n_b / N) |acc_b - conf_b| over the equal-width bins of :func:`reliability_bins`.

    Equal to torchmetrics' ``MulticlassCalibrationError(n_bins=num_bins, norm="l1")`` except for confidences lying
    exactly on a bin edge: torchmetrics' bins are [b / B, (b + 1) / B) with a confidence of exactly 1 alone in an
    extra bin, ours are (b / B, (b + 1) / B] so that num_bins bins cover (0, 1].
    """
    bins = reliability_bins(probs, labels, num_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(np.sum(gaps * bins["count"][filled]) / np.sum(bins["count"]))
