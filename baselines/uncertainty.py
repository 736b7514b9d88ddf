"""Predictive uncertainty from logits, sampled softmaxes, ensemble members and Dirichlet outputs (numpy).

Probabilities and logits always have the classes on the LAST axis; softmax and entropy reduce over that axis only,
so one record's prediction never depends on the other records of its batch.
"""

import numpy as np
from scipy.special import digamma, entr

from baselines.metrics.inputs import probabilities, to_numpy


def softmax(logits, axis: int = -1) -> np.ndarray:
    """softmax(z)_k = exp(z_k - max_j z_j) / sum_j exp(z_j - max_j z_j) over `axis` (the classes)."""
    logits = np.asarray(to_numpy(logits, "logits"), dtype=np.float64)
    # Subtracting the max changes nothing mathematically and keeps exp from overflowing.
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def entropy(probs, axis: int = -1) -> np.ndarray:
    """Shannon entropy H(p) = -sum_k p_k log p_k in nats over `axis` (the classes), with 0 log 0 = 0."""
    return entr(np.asarray(to_numpy(probs, "probs"), dtype=np.float64)).sum(axis=axis)


def sampled_softmax(mu, sigma, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Expected softmax of Gaussian logits (Kendall & Gal, 2017; Valdenegro-Toro & Mori, 2022):

    p_s = (1 / T) sum_{t=1}^T softmax(mu_s + sigma_s * eps_t), eps_t ~ N(0, I), T = num_samples.

    `mu` and `sigma` (>= 0) are (S, N, K) logit means and standard deviations of S MC passes or ensemble members
    (any shapes that broadcast, classes last); returns (S, N, K). The draws come from `rng` in a fixed order, so
    a generator with the same state gives the same result.
    """
    mu = np.asarray(to_numpy(mu, "mu"), dtype=np.float64)
    sigma = np.asarray(to_numpy(sigma, "sigma"), dtype=np.float64)
    if not isinstance(num_samples, int | np.integer) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if (sigma < 0).any():
        raise ValueError("sigma must be non-negative (a standard deviation)")
    shape = np.broadcast_shapes(mu.shape, sigma.shape)
    total = np.zeros(shape)
    # One draw at a time: holding all T draws at once would take T times the memory of the output.
    for _ in range(num_samples):
        total += softmax(mu + sigma * rng.standard_normal(shape))
    return total / num_samples


def entropy_decomposition(member_probs) -> dict[str, np.ndarray]:
    """Total = aleatoric + epistemic decomposition of the predictive entropy (Depeweg et al., 2018):

    total = H[mean_s p_s], aleatoric = mean_s H[p_s], epistemic = total - aleatoric (the mutual information between
    the prediction and the member, >= 0 by concavity of H; rounding negatives are clipped to 0).

    `member_probs` is (S, N, K); every value returned is (N,).
    """
    member_probs = probabilities(member_probs, "member_probs", ndim=3)
    total = entropy(member_probs.mean(axis=0))
    aleatoric = entropy(member_probs).mean(axis=0)
    return {"total": total, "aleatoric": aleatoric, "epistemic": np.maximum(total - aleatoric, 0.0)}


def dirichlet_uncertainty(alpha) -> dict[str, np.ndarray]:
    """Uncertainty of Dirichlet outputs (evidential / prior networks), `alpha` (N, K) > 0, a0 = sum_k a_k:

    aleatoric = E_{p ~ Dir(alpha)} H[p] = -sum_k (a_k / a0) (digamma(a_k + 1) - digamma(a0 + 1))
                (the expected entropy, Malinin & Gales, 2018)
    epistemic = K / a0  (the vacuity of Sensoy et al., 2018)
    total = H[alpha / a0]  (entropy of the expected categorical)

    Every value returned is (N,).
    """
    alpha = np.asarray(to_numpy(alpha, "alpha"), dtype=np.float64)
    if alpha.ndim != 2 or alpha.shape[1] < 2:
        raise ValueError(f"alpha must have shape (N, K) with K >= 2, got {alpha.shape}")
    if not np.isfinite(alpha).all() or (alpha <= 0).any():
        raise ValueError("alpha must be finite and > 0 (Dirichlet concentrations)")
    alpha0 = alpha.sum(axis=-1, keepdims=True)
    mean = alpha / alpha0
    expected_entropy = -np.sum(mean * (digamma(alpha + 1.0) - digamma(alpha0 + 1.0)), axis=-1)
    return {"aleatoric": expected_entropy, "epistemic": alpha.shape[1] / alpha0[:, 0], "total": entropy(mean)}
