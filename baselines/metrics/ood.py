"""Binary detection metrics: scores (higher = more likely positive, e.g. an uncertainty) against 0/1 positives."""

import numpy as np

from baselines.metrics.inputs import binary_flags, scores_1d


def _curve(scores, positives) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive counts when thresholding at each distinct score, from the highest down."""
    scores = scores_1d(scores, "scores")
    positives = binary_flags(positives, "positives", len(scores))
    if positives.all() or not positives.any():
        raise ValueError("positives must contain both positive and negative samples")
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order]
    # Tied scores share one threshold: count them all at the last position of their group.
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    true_pos = np.cumsum(positives)[last]
    return true_pos, last + 1 - true_pos


def roc_curve(scores, positives) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) from (0, 0) to (1, 1), one point per distinct score."""
    true_pos, false_pos = _curve(scores, positives)
    return np.r_[0.0, false_pos / false_pos[-1]], np.r_[0.0, true_pos / true_pos[-1]]


def auroc(scores, positives) -> float:
    """Area under the ROC curve (trapezoidal, so a tied positive/negative pair counts 1/2), as sklearn's
    ``roc_auc_score`` and TorchUncertainty's AUROC."""
    fpr, tpr = roc_curve(scores, positives)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def aupr(scores, positives) -> float:
    """Area under the precision-recall curve as average precision, AP = sum_n (R_n - R_{n-1}) P_n over the distinct
    thresholds (no interpolation), as sklearn's ``average_precision_score`` and torchmetrics' BinaryAveragePrecision
    (TorchUncertainty's AUPR)."""
    true_pos, false_pos = _curve(scores, positives)
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr95(scores, positives) -> float:
    """False positive rate at 95% true positive rate, as TorchUncertainty's ``FPR95`` (0.13, after Hendrycks et al.).

    Thresholds are the distinct scores, taken from the highest down (a record is called positive when its score is
    at least the threshold, so tied scores enter together); the result is the FPR at the first threshold whose TPR
    reaches 0.95. (TorchUncertainty before 0.13 took the threshold whose TPR is closest to 0.95 instead, which can
    stop below 0.95.)
    """
    true_pos, false_pos = _curve(scores, positives)
    cutoff = int(np.argmax(true_pos / true_pos[-1] >= 0.95))
    return float(false_pos[cutoff] / false_pos[-1])


def detection_aurocs(uncertainties: dict, flags: dict) -> dict[tuple[str, str], float]:
    """Injected-noise detection: for every uncertainty and every flag (switched label, corrupted modality,
    conflicting modality, OOD, ...), the AUROC of the uncertainty for telling the flagged records from the others.

    Every array is (N,) over the same records; the negatives of a flag are the records without that flag (they
    may carry another one). NaN where a flag marks all records or none.
    """
    if not uncertainties or not flags:
        raise ValueError("uncertainties and flags must both be non-empty dicts of arrays")
    scores = {name: scores_1d(values, f"uncertainties[{name!r}]") for name, values in uncertainties.items()}
    num_samples = len(next(iter(scores.values())))
    for name, values in scores.items():
        if len(values) != num_samples:
            raise ValueError(f"uncertainties[{name!r}] has {len(values)} values, expected {num_samples}")
    flags = {name: binary_flags(values, f"flags[{name!r}]", num_samples) for name, values in flags.items()}
    return {
        (score_name, flag_name): auroc(values, flagged) if 0 < flagged.sum() < num_samples else float("nan")
        for score_name, values in scores.items()
        for flag_name, flagged in flags.items()
    }
