"""OOD scores computed from logits alone, higher meaning "more likely out of distribution" (the convention of the
uncertainty measures, so that `metrics.auroc(score, is_ood)` reads them as it reads an epistemic uncertainty).

Logits are (..., K), classes last; (S, N, K) MC passes or members give (S, N) scores: average them over S, or pass
the averaged logits. `Prediction.logits()` gives every method's logits.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from baselines.metrics.inputs import to_numpy


def _logits(logits) -> np.ndarray:
    logits = np.asarray(to_numpy(logits, "logits"), dtype=np.float64)
    if logits.ndim < 1 or logits.shape[-1] < 2 or not np.isfinite(logits).all():
        raise ValueError(f"logits must be finite with K >= 2 classes on the last axis, got shape {logits.shape}")
    return logits


def energy(logits, temperature: float = 1.0) -> np.ndarray:
    """The free energy of Liu et al. (NeurIPS 2020), E(x) = -T logsumexp_k(logits_k / T): low on in-distribution
    records (large logits), high out of distribution."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return -temperature * logsumexp(_logits(logits) / temperature, axis=-1)


def negative_max_logit(logits) -> np.ndarray:
    """-max_k logits_k (Hendrycks et al., ICML 2022, "MaxLogit"), negated so that higher means more likely OOD."""
    return -_logits(logits).max(axis=-1)
