"""Temperature scaling (Guo et al., ICML 2017): one temperature T > 0 divides the logits, fitted on held-out records
by minimising the negative log-likelihood; it changes confidences, never the predicted class.

Logits are (N, K), or (S, N, K) for S MC passes or ensemble members: then the prediction is the mean over S of
softmax(logits_s / T) and T is fitted on that mean. `Prediction.logits()` gives every method's logits (log alpha for
the Dirichlet methods, whose softmax is alpha / alpha_0).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

from baselines.metrics.inputs import labels_for, to_numpy

TEMPERATURE_BOUNDS = (1e-2, 1e2)


def _logits(logits) -> np.ndarray:
    """(S, N, K) float64 finite logits from (N, K) or (S, N, K)."""
    logits = np.asarray(to_numpy(logits, "logits"), dtype=np.float64)
    if logits.ndim not in (2, 3) or logits.shape[-1] < 2 or logits.size == 0:
        raise ValueError(f"logits must have shape (N, K) or (S, N, K) with K >= 2, got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite")
    return logits if logits.ndim == 3 else logits[np.newaxis]


def _log_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) log of the mean over passes of softmax(logits / temperature)."""
    if not (isinstance(temperature, int | float | np.floating) and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return logsumexp(log_softmax(logits / temperature, axis=-1), axis=0) - math.log(len(logits))


def temperature_probs(logits, temperature: float) -> np.ndarray:
    """(N, K) probabilities of `logits` scaled by 1 / `temperature` (T = 1: the plain softmax, averaged over passes)."""
    return np.exp(_log_probs(_logits(logits), temperature))


def temperature_nll(logits, labels, temperature: float) -> float:
    """Mean negative log-likelihood of `labels` under `temperature_probs(logits, temperature)`."""
    logits = _logits(logits)
    labels = labels_for(labels, logits.shape[1], logits.shape[2])
    return float(-_log_probs(logits, temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature in `bounds` that minimises `temperature_nll` on (`logits`, `labels`), e.g. the validation
    split: a bounded 1-D search over log T (the NLL is smooth in it; Brent's method to 1e-6)."""
    logits = _logits(logits)
    labels = labels_for(labels, logits.shape[1], logits.shape[2])
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    result = minimize_scalar(
        lambda log_t: temperature_nll(logits, labels, math.exp(log_t)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return math.exp(result.x)
