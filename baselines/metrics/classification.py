"""Proper scoring rules and accuracy over probability rows (class axis last)."""

import numpy as np

from baselines.metrics.inputs import labels_for, probabilities


def _checked(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    probs = probabilities(probs)
    return probs, labels_for(labels, *probs.shape)


def accuracy(probs, labels) -> float:
    """Top-1 accuracy: mean_i [argmax_k p_ik = y_i]."""
    probs, labels = _checked(probs, labels)
    return float(np.mean(probs.argmax(axis=-1) == labels))


def nll(probs, labels) -> float:
    """Negative log-likelihood: -mean_i log p_{i, y_i} (natural log).

    Probabilities are not clipped: a zero probability on the true class gives inf, as it should.
    """
    probs, labels = _checked(probs, labels)
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))


def brier(probs, labels) -> float:
    """Brier score: mean_i sum_k (p_ik - [y_i = k])^2, in [0, 2]."""
    probs, labels = _checked(probs, labels)
    errors = probs.copy()
    errors[np.arange(len(labels)), labels] -= 1.0
    return float(np.mean(np.sum(errors**2, axis=-1)))
