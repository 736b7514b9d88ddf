"""Uncertainty metrics as plain functions over numpy arrays (torch tensors are converted).

Probability arrays are (N, K) rows over the class axis; labels are (N,) class indices. These functions are the one
implementation the project's code uses. Each metric is also a standalone `evaluate` module (`evaluate/<name>/`: numpy
only, with its metric card), loadable from a copy or a Hub Space: ``evaluate.load(evaluate_module_path("ece"))``. Its
arithmetic is a copy, which tests/test_baselines_metrics.py checks against these functions.
"""

from pathlib import Path

from baselines.metrics.calibration import ece, reliability_bins
from baselines.metrics.classification import accuracy, brier, nll
from baselines.metrics.ood import aupr, auroc, detection_aurocs, fpr95, roc_curve
from baselines.metrics.risk_coverage import augrc, aurc

EVALUATE_MODULES = ("accuracy", "nll", "brier", "ece", "aurc", "ood_auroc", "ood_aupr", "fpr95")


def evaluate_module_path(name: str) -> str:
    """Absolute path of the folder of the `evaluate` module `name`, for ``evaluate.load`` (which then needs no
    network) or to copy into a Hub Space."""
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
