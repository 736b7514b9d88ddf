"""Split conformal prediction with adaptive prediction sets: APS (Romano et al., 2020) and its regularised form RAPS
(Angelopoulos et al., ICLR 2021).

A record's probabilities p (K,) sorted in decreasing order give each class k its rank o(k) (1 = most probable) and
the randomised score

    s(k) = sum_{j: o(j) < o(k)} p_j + U p_k + lam * max(0, o(k) - k_reg),   U ~ Uniform(0, 1),

(lam = 0: APS). Calibration takes q = the ceil((n + 1)(1 - alpha))-th smallest score of the true labels of n
calibration records; a test record's set is {k : s(k) <= q}. For exchangeable calibration and test records the set
holds the true label with probability >= 1 - alpha. The draws U come from a `numpy.random.Generator`; with the same
draws the sets are nested in alpha (a smaller alpha, a larger q, a larger set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from baselines.metrics.inputs import labels_for, probabilities


def class_scores(probs, uniforms: np.ndarray, lam: float = 0.0, k_reg: int = 0) -> np.ndarray:
    """(N, K) scores s(k) of every class of every record of `probs` (N, K), with U = `uniforms` (N,)."""
    probs = probabilities(probs)
    order = np.argsort(-probs, axis=-1, kind="stable")
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the classes ranked above
    penalty = lam * np.maximum(0, np.arange(1, probs.shape[-1] + 1) - k_reg)
    sorted_scores = before + uniforms[:, np.newaxis] * sorted_probs + penalty
    scores = np.empty_like(sorted_scores)
    np.put_along_axis(scores, order, sorted_scores, axis=-1)
    return scores


@dataclass(frozen=True)
class ConformalSets:
    """A calibrated set predictor: `threshold` q at level `alpha`, for the score with `lam` and `k_reg`."""

    alpha: float
    threshold: float
    lam: float = 0.0
    k_reg: int = 0

    def predict(self, probs, rng: np.random.Generator) -> np.ndarray:
        """(N, K) boolean prediction sets for `probs` (N, K)."""
        probs = probabilities(probs)
        return class_scores(probs, rng.uniform(size=len(probs)), self.lam, self.k_reg) <= self.threshold


def calibrate(probs, labels, alpha: float, rng: np.random.Generator, lam: float = 0.0, k_reg: int = 0) -> ConformalSets:
    """`ConformalSets` at miscoverage `alpha` in (0, 1), calibrated on (`probs`, `labels`), the calibration split."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if lam < 0 or k_reg < 0:
        raise ValueError(f"lam and k_reg must be >= 0, got lam={lam!r}, k_reg={k_reg!r}")
    probs = probabilities(probs)
    labels = labels_for(labels, *probs.shape)
    scores = class_scores(probs, rng.uniform(size=len(probs)), lam, k_reg)[np.arange(len(labels)), labels]
    rank = math.ceil((len(scores) + 1) * (1 - alpha))
    # Fewer than 1 / alpha - 1 calibration records cannot certify the level: every class goes in the set.
    threshold = math.inf if rank > len(scores) else float(np.sort(scores)[rank - 1])
    return ConformalSets(alpha, threshold, lam, k_reg)


def coverage(sets: np.ndarray, labels) -> float:
    """Fraction of records whose set (N, K) holds their label."""
    labels = labels_for(labels, *sets.shape)
    return float(sets[np.arange(len(labels)), labels].mean())


def mean_set_size(sets: np.ndarray) -> float:
    """Mean number of classes per set (N, K)."""
    return float(sets.sum(axis=-1).mean())
