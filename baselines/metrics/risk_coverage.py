"""Selective classification: the areas under the risk-coverage and generalized risk-coverage curves."""

import numpy as np

from baselines.metrics.inputs import labels_for, probabilities, scores_1d, to_numpy


def _ranked_errors(probs, labels, uncertainty) -> np.ndarray:
    """Errors [argmax_k p != y] from most to least certain by `uncertainty` (ascending; default 1 - max_k p_ik).

    Each group of tied uncertainties gets the group's mean error at every position: the areas below are linear in
    the errors, so this gives their expectation over all orderings of the ties (deterministic, order-free).
    """
    probs = to_numpy(probs, "probs")
    if probs.ndim == 1:
        probs = np.stack([1.0 - probs.astype(np.float64), probs], axis=-1)
    probs = probabilities(probs)
    labels = labels_for(labels, *probs.shape)
    if uncertainty is None:
        uncertainty = 1.0 - probs.max(axis=-1)
    uncertainty = scores_1d(uncertainty, "uncertainty", len(labels))
    errors = (probs.argmax(axis=-1) != labels).astype(np.float64)
    order = np.argsort(uncertainty, kind="stable")
    uncertainty, errors = uncertainty[order], errors[order]
    starts = np.flatnonzero(np.r_[True, uncertainty[1:] != uncertainty[:-1]])
    sizes = np.diff(np.r_[starts, len(errors)])
    return np.repeat(np.add.reduceat(errors, starts) / sizes, sizes)


def aurc(probs, labels, uncertainty=None) -> float:
    """Area under the risk-coverage curve (Geifman & El-Yaniv, 2017), as TorchUncertainty's ``AURC``.

    ``probs`` is (N, K) probability rows, or (N,) probabilities of class 1 for a binary task (as in
    TorchUncertainty). Samples are ranked from most to least certain, by ``uncertainty`` (ascending; default
    1 - max_k p_ik); with e_(j) the error [argmax_k p != y] of the j-th, the selective risk at coverage k / N is
    r_k = (1 / k) sum_{j <= k} e_(j), and the trapezoidal area over coverages 1/N .. 1, rescaled to a unit support:

    AURC = (1 / (N - 1)) sum_{k=1}^{N-1} (r_k + r_{k+1}) / 2        (NaN for N < 2)

    Ties: TorchUncertainty orders tied samples as its sort happens to; here each group of tied uncertainties gets
    the group's mean error at every position, which gives the expectation of that area over all orderings of the
    ties, so the result is deterministic and equal to TorchUncertainty's whenever there are no ties.
    """
    errors = _ranked_errors(probs, labels, uncertainty)
    num_samples = len(errors)
    if num_samples < 2:
        return float("nan")
    risks = np.cumsum(errors) / np.arange(1, num_samples + 1)
    return float(np.mean((risks[1:] + risks[:-1]) / 2.0))


def augrc(probs, labels, uncertainty=None) -> float:
    """Area under the generalized risk-coverage curve (Traub et al., 2024), from any uncertainty score.

    Inputs and ranking as in :func:`aurc`. The generalized risk at coverage k / N is the share of all N samples that
    are both accepted and wrong, g_k = (1 / N) sum_{j <= k} e_(j) (g_0 = 0); AUGRC is the trapezoidal area under
    g over coverages 0 .. 1:

    AUGRC = (1 / N) sum_{k=1}^{N} (g_{k-1} + g_k) / 2

    It lies in [0, 1/2]; lower is better. Ties count as in :func:`aurc` (the mean over orderings of the ties).
    """
    errors = _ranked_errors(probs, labels, uncertainty)
    risks = np.r_[0.0, np.cumsum(errors)] / len(errors)
    return float(np.mean((risks[1:] + risks[:-1]) / 2.0))
