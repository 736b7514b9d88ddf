"""Softmax, entropies and the uncertainty decompositions against definitions, Monte Carlo and hand computation."""

import numpy as np
import pytest
import scipy.stats
import torch

from baselines.uncertainty import (
    dirichlet_uncertainty,
    entropy,
    entropy_decomposition,
    sampled_softmax,
    softmax,
)


def random_member_probs(seed: int, shape=(5, 40, 4), concentration: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(shape[-1], concentration), size=shape[:-1])


# --- softmax and entropy --------------------------------------------------------------------------------------


def test_softmax_is_over_the_class_axis():
    logits = np.random.default_rng(0).normal(size=(4, 3)) * 3
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    np.testing.assert_allclose(probs, torch.softmax(torch.tensor(logits), dim=-1).numpy())
    # A record's probabilities do not depend on the rest of its batch (a softmax over the batch axis would fail
    # both this and the sums above).
    other_batch = logits.copy()
    other_batch[1:] += np.random.default_rng(1).normal(size=(3, 3)) * 5
    np.testing.assert_array_equal(softmax(other_batch)[0], probs[0])
    np.testing.assert_array_equal(softmax(logits[:1])[0], probs[0])


def test_softmax_of_members_and_large_logits():
    logits = np.random.default_rng(2).normal(size=(3, 5, 4)) * 1000  # exp would overflow without the shift
    probs = softmax(logits)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    np.testing.assert_allclose(softmax(logits, axis=1).sum(axis=1), 1.0)


def test_entropy_over_the_class_axis_with_zero_log_zero():
    probs = random_member_probs(3, shape=(30, 6), concentration=0.3)
    np.testing.assert_allclose(entropy(probs), scipy.stats.entropy(probs, axis=-1))
    np.testing.assert_allclose(entropy([[1.0, 0.0, 0.0], [0.25, 0.25, 0.5]]), [0.0, 1.5 * np.log(2)])
    assert entropy(np.full(7, 1 / 7)) == pytest.approx(np.log(7))
    assert entropy(torch.tensor([[0.5, 0.5]]))[0] == pytest.approx(np.log(2))


# --- sampled softmax ------------------------------------------------------------------------------------------


def test_sampled_softmax_converges_to_softmax_as_sigma_vanishes():
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(3, 10, 5)) * 2
    np.testing.assert_allclose(sampled_softmax(mu, np.zeros_like(mu), 5, rng), softmax(mu), rtol=1e-12)
    sigmas = (1e-1, 1e-2, 1e-3)
    errors = [np.abs(sampled_softmax(mu, np.full_like(mu, sigma), 50, rng) - softmax(mu)).max() for sigma in sigmas]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3


def test_sampled_softmax_is_the_gaussian_expectation():
    # Two classes: p_1 = E[sigmoid(d)] with d = z_1 - z_0 ~ N(mu_1 - mu_0, sigma_0^2 + sigma_1^2), by quadrature.
    mu, sigma = np.array([[[0.3, 1.5]]]), np.array([[[0.8, 1.2]]])
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    d = mu[0, 0, 1] - mu[0, 0, 0] + np.sqrt(np.sum(sigma**2)) * nodes
    expected = np.sum(weights / (1 + np.exp(-d))) / np.sqrt(2 * np.pi)
    sampled = sampled_softmax(mu, sigma, 20_000, np.random.default_rng(5))
    assert sampled.shape == (1, 1, 2)
    assert sampled[0, 0, 1] == pytest.approx(expected, abs=0.005)  # ~5 standard errors
    # Noise on the logits pulls the prediction towards uniform.
    assert sampled[0, 0, 1] < softmax(mu)[0, 0, 1]


def test_sampled_softmax_is_reproducible_per_generator():
    mu = np.random.default_rng(6).normal(size=(2, 8, 3))
    sigma = np.full_like(mu, 0.5)
    first = sampled_softmax(mu, sigma, 10, np.random.default_rng(7))
    np.testing.assert_array_equal(first, sampled_softmax(mu, sigma, 10, np.random.default_rng(7)))
    assert not np.array_equal(first, sampled_softmax(mu, sigma, 10, np.random.default_rng(8)))
    np.testing.assert_allclose(first.sum(axis=-1), 1.0)
    # sigma broadcasts, e.g. one standard deviation per record.
    assert sampled_softmax(mu, sigma[..., :1], 2, np.random.default_rng(7)).shape == mu.shape


def test_sampled_softmax_rejects_bad_arguments():
    mu = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="sigma"):
        sampled_softmax(mu, -np.ones_like(mu), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_samples"):
        sampled_softmax(mu, np.ones_like(mu), 0, np.random.default_rng(0))


# --- ensemble decompositions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_entropy_decomposition_identities(seed):
    member_probs = random_member_probs(seed)
    parts = entropy_decomposition(member_probs)
    assert all(part.shape == (40,) for part in parts.values())
    np.testing.assert_allclose(parts["total"], parts["aleatoric"] + parts["epistemic"], atol=1e-12)
    np.testing.assert_allclose(parts["total"], scipy.stats.entropy(member_probs.mean(axis=0), axis=-1))
    np.testing.assert_allclose(parts["aleatoric"], scipy.stats.entropy(member_probs, axis=-1).mean(axis=0))
    assert (parts["epistemic"] > 0).all()  # random members disagree on every record


def test_entropy_decomposition_when_members_agree_or_disagree():
    agreeing = np.repeat(random_member_probs(9, shape=(1, 10, 3)), 4, axis=0)
    parts = entropy_decomposition(agreeing)
    np.testing.assert_allclose(parts["epistemic"], 0.0, atol=1e-12)
    assert (parts["epistemic"] >= 0).all()
    np.testing.assert_allclose(parts["total"], parts["aleatoric"])
    # Two confident members that contradict each other: no aleatoric, log 2 of epistemic.
    parts = entropy_decomposition([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose([parts["aleatoric"][0], parts["epistemic"][0]], [0.0, np.log(2)])


def test_entropy_decomposition_rejects_bad_shapes():
    with pytest.raises(ValueError, match="member_probs"):
        entropy_decomposition(np.full((4, 3), 1 / 3))
    with pytest.raises(ValueError, match="member_probs"):
        entropy_decomposition(np.ones((2, 4, 3)))  # rows summing to 3


def test_dirichlet_expected_entropy_matches_monte_carlo():
    alpha = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, 5.0], [20.0, 20.0, 2.0], [0.4, 0.4, 0.4]])
    result = dirichlet_uncertainty(alpha)
    rng = np.random.default_rng(10)
    for row, concentration in enumerate(alpha):
        entropies = entropy(rng.dirichlet(concentration, size=100_000))
        standard_error = entropies.std() / np.sqrt(len(entropies))
        assert abs(result["aleatoric"][row] - entropies.mean()) < 5 * standard_error
    np.testing.assert_allclose(result["epistemic"], 3 / alpha.sum(axis=1))
    np.testing.assert_allclose(result["total"], scipy.stats.entropy(alpha, axis=1))
    assert (result["aleatoric"] <= result["total"]).all()  # Jensen: E[H(p)] <= H(E[p])


def test_dirichlet_hand_computed_and_bad_alpha():
    # p ~ Uniform(0, 1) on two classes: E[-p ln p - (1 - p) ln(1 - p)] = 2 * 1/4 = 1/2.
    result = dirichlet_uncertainty([[1.0, 1.0]])
    assert result["aleatoric"][0] == pytest.approx(0.5)
    assert result["epistemic"][0] == 1.0 and result["total"][0] == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_uncertainty([[1.0, 0.0]])
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_uncertainty([1.0, 2.0])
