"""Uncertainty metrics as plain functions over numpy arrays (torch tensors are converted).

Probability arrays are (N, K) rows over the class axis; labels are (N,) class indices. Each metric is also an
offline `evaluate` module: ``evaluate.load(evaluate_module_path("ece"))``.
"""

from pathlib import Path

from baselines.metrics.calibration import ece, reliability_bins
from baselines.metrics.classification import accuracy, brier, nll
from baselines.metrics.ood import aupr, auroc, detection_aurocs, fpr95, roc_curve
from baselines.metrics.risk_coverage import augrc, aurc

EVALUATE_MODULES = ("accuracy", "nll", "brier", "ece", "aurc", "ood_auroc", "ood_aupr", "fpr95")


def evaluate_module_path(name: str) -> str:
    """Absolute path of the local `evaluate` module `name`, for ``evaluate.load`` (which then needs no network)."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown evaluate module {name!r}; expected one of {', '.join(EVALUATE_MODULES)}")
    return str(Path(__file__).resolve().parent / "evaluate" / name)


__all__ = [
    "EVALUATE_MODULES",
    "accuracy",
    "aupr",
    "auroc",
    "augrc",
    "aurc",
    "brier",
    "detection_aurocs",
    "ece",
    "evaluate_module_path",
    "fpr95",
    "nll",
    "reliability_bins",
    "roc_curve",
]
