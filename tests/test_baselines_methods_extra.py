"""The methods beyond the paper's: EDL, TMC (Dempster-Shafer fusion), temperature scaling, split conformal prediction,
energy and max-logit OOD scores."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax
from scipy.stats import dirichlet
from test_baselines_methods import quiet, synthetic
from torchmetrics.classification import MulticlassCalibrationError

from baselines import metrics
from baselines.conformal import calibrate, class_scores, coverage, mean_set_size
from baselines.losses import annealing, evidential_ce, evidential_mse, kl_to_uniform, tmc_loss
from baselines.methods import EDL, TMC, Prediction, make_method
from baselines.models import DempsterShaferFusion, EvidentialNet, build_model
from baselines.ood_scores import energy, negative_max_logit
from baselines.opinions import combine_opinions, fuse_opinions, opinion
from baselines.temperature_scaling import fit_temperature, temperature_nll, temperature_probs
from baselines.uncertainty import dirichlet_uncertainty

# --------------------------------------------------------------------------- Dempster-Shafer fusion


def test_fuse_opinions_matches_a_hand_computed_example():
    # view 1: e = (6, 0, 0), S = 9: b = (2/3, 0, 0), u = 1/3; view 2: e = (3, 3, 0), S = 9: b = (1/3, 1/3, 0), u = 1/3
    # C = 2/3 * 1/3 = 2/9; b = (2/9 + 2/9 + 1/9, 1/9, 0) / (7/9) = (5/7, 1/7, 0); u = (1/9) / (7/9) = 1/7
    # S = K / u = 21, e = b S = (15, 3, 0), alpha = (16, 4, 1)
    first, second = torch.tensor([[7.0, 1.0, 1.0]]), torch.tensor([[4.0, 4.0, 1.0]])
    torch.testing.assert_close(fuse_opinions([first, second]), torch.tensor([[16.0, 4.0, 1.0]]))
    belief, uncertainty = opinion(fuse_opinions([first, second]))
    torch.testing.assert_close(belief, torch.tensor([[5 / 7, 1 / 7, 0.0]]))
    torch.testing.assert_close(uncertainty, torch.tensor([[1 / 7]]))
    torch.testing.assert_close(fuse_opinions([first]), first)
    with pytest.raises(ValueError, match="at least one"):
        fuse_opinions([])


def test_fuse_opinions_is_commutative_and_agreement_lowers_uncertainty():
    generator = torch.Generator().manual_seed(0)
    views = [1 + 5 * torch.rand(50, 4, generator=generator, dtype=torch.float64) for _ in range(3)]
    torch.testing.assert_close(combine_opinions(views[0], views[1]), combine_opinions(views[1], views[0]))
    torch.testing.assert_close(fuse_opinions(views), fuse_opinions(views[::-1]))
    belief, uncertainty = opinion(fuse_opinions(views))
    torch.testing.assert_close(belief.sum(-1, keepdim=True) + uncertainty, torch.ones(50, 1, dtype=torch.float64))
    # two views that agree (the same opinion) give a more certain one than either
    _, alone = opinion(views[0])
    _, together = opinion(fuse_opinions([views[0], views[0]]))
    assert (together < alone).all()
    # a vacuous view (no evidence) changes nothing
    torch.testing.assert_close(fuse_opinions([views[0], torch.ones_like(views[0])]), views[0])


# --------------------------------------------------------------------------- losses


def test_evidential_mse_is_the_expected_squared_error_under_the_dirichlet():
    rng = np.random.default_rng(0)
    alpha, labels = 1 + rng.gamma(2.0, 2.0, size=(6, 4)), np.array([0, 1, 2, 3, 0, 1])
    loss = evidential_mse(torch.tensor(alpha), torch.tensor(labels), kl_weight=0.0).numpy()
    for row, label, value in zip(alpha, labels, loss, strict=True):
        target = np.eye(4)[label]
        expected = ((target - dirichlet.mean(row)) ** 2 + dirichlet.var(row)).sum()
        assert value == pytest.approx(expected, rel=1e-12)
    # the KL term acts on the misleading evidence only: none left, no penalty
    misleading = torch.tensor(alpha).clone()
    misleading[torch.arange(6), torch.tensor(labels)] = 1.0
    with_kl = evidential_mse(torch.tensor(alpha), torch.tensor(labels), kl_weight=0.5)
    torch.testing.assert_close(with_kl - torch.tensor(loss), 0.5 * kl_to_uniform(misleading))
    only_true = torch.ones(6, 4, dtype=torch.float64)
    only_true[torch.arange(6), torch.tensor(labels)] = 9.0
    torch.testing.assert_close(
        evidential_mse(only_true, torch.tensor(labels), 1.0), evidential_mse(only_true, torch.tensor(labels), 0.0)
    )


def test_tmc_loss_sums_the_fused_and_the_views_evidential_losses():
    rng = np.random.default_rng(1)
    image, text = (torch.tensor(1 + rng.gamma(2.0, 2.0, size=(5, 3))) for _ in range(2))
    labels = torch.tensor([0, 1, 2, 0, 1])
    fused = fuse_opinions([image, text])
    for epoch in (1, 4, None):
        weight = annealing(epoch, 10)
        expected = sum(evidential_ce(a, labels, weight).mean() for a in (fused, image, text))
        torch.testing.assert_close(tmc_loss(fused, {"image": image, "text": text}, labels, epoch), expected)
    assert annealing(4, 10) == 0.4


# --------------------------------------------------------------------------- EDL and TMC


@pytest.fixture(scope="module")
def learnable():
    return synthetic(120, 4, seed=0, noise=2.0), synthetic(40, 4, seed=1, noise=2.0)


def test_edl_learns_and_predicts_a_dirichlet(learnable):
    train_data, test_data = learnable
    method = make_method("edl", ("image", "text"), quiet(epochs=4), num_classes=4)
    assert isinstance(method, EDL)
    history = method.fit(train_data)
    assert all(math.isfinite(v) for v in history["val_loss"])
    assert isinstance(method.model, EvidentialNet)
    prediction = method.predict(test_data)
    assert prediction.alpha.shape == (40, 4) and prediction.alphas is None and prediction.mu is None
    assert (prediction.alpha >= 1).all()
    np.testing.assert_array_equal(method.predict(test_data).alpha, prediction.alpha)
    assert metrics.accuracy(prediction.probs(), prediction.labels) > 0.8  # chance: 1/4
    assert set(dirichlet_uncertainty(prediction.alpha)) == {"aleatoric", "epistemic", "total"}
    log_form = make_method("edl", ("text",), quiet(epochs=1), num_classes=4, edl_loss="log")
    log_form.fit(train_data)
    assert log_form.predict(test_data).alpha.shape == (40, 4)
    with pytest.raises(ValueError, match="edl_loss"):
        make_method("edl", edl_loss="hinge")


def test_tmc_fuses_the_views_by_dempster_shafer(learnable):
    train_data, test_data = learnable
    method = make_method("tmc", ("image", "text"), quiet(epochs=4), num_classes=4)
    assert isinstance(method, TMC)
    method.fit(train_data)
    assert isinstance(method.model, DempsterShaferFusion)
    prediction = method.predict(test_data)
    assert set(prediction.alphas) == {"image", "text"}
    views = [torch.tensor(prediction.alphas[m], dtype=torch.float64) for m in ("image", "text")]
    np.testing.assert_allclose(prediction.alpha, fuse_opinions(views).numpy(), rtol=1e-4)
    assert metrics.accuracy(prediction.probs(), prediction.labels) > 0.8
    # the fused opinion is more certain than either view wherever the two agree on the class
    vacuity = {m: dirichlet_uncertainty(a)["epistemic"] for m, a in prediction.alphas.items()}
    agree = prediction.alphas["image"].argmax(-1) == prediction.alphas["text"].argmax(-1)
    fused = dirichlet_uncertainty(prediction.alpha)["epistemic"]
    assert agree.any() and (fused[agree] < np.minimum(vacuity["image"], vacuity["text"])[agree]).all()
    with pytest.raises(ValueError, match="unknown method"):
        build_model("svm")


# --------------------------------------------------------------------------- temperature scaling


def overconfident(n: int, seed: int, sharpness: float = 4.0):
    """Labels drawn from softmax(z) and logits sharpness * z: an over-confident model of known temperature."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, size=(n, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(true_logits, axis=-1)])
    return sharpness * true_logits, labels


def torchmetrics_ece(probs: np.ndarray, labels: np.ndarray) -> float:
    measure = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=15, norm="l1")
    return measure(torch.tensor(probs), torch.tensor(labels)).item()


def test_temperature_scaling_calibrates_an_overconfident_model():
    val_logits, val_labels = overconfident(3000, seed=0)
    test_logits, test_labels = overconfident(3000, seed=1)
    temperature = fit_temperature(val_logits, val_labels)
    assert temperature == pytest.approx(4.0, rel=0.1)  # recovers the sharpening
    assert temperature_nll(val_logits, val_labels, temperature) < temperature_nll(val_logits, val_labels, 1.0)
    before = torchmetrics_ece(temperature_probs(test_logits, 1.0), test_labels)
    after = torchmetrics_ece(temperature_probs(test_logits, temperature), test_labels)
    assert after < before and after < 0.03 < before
    scaled = temperature_probs(test_logits, temperature)
    np.testing.assert_array_equal(scaled.argmax(-1), test_logits.argmax(-1))  # the predicted class never changes


def test_temperature_one_leaves_probabilities_unchanged():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 7, 4))  # passes, records, classes
    np.testing.assert_allclose(temperature_probs(logits, 1.0), softmax(logits, axis=-1).mean(0), rtol=1e-12)
    np.testing.assert_allclose(temperature_probs(logits[0], 1.0), softmax(logits[0], axis=-1), rtol=1e-12)
    alpha = 1 + rng.gamma(2.0, 2.0, size=(7, 4))
    dirichlet_prediction = Prediction(alpha=alpha)
    np.testing.assert_allclose(temperature_probs(dirichlet_prediction.logits(), 1.0), dirichlet_prediction.probs())
    assert Prediction(mu=logits).logits() is not None and Prediction(mu=logits).logits().shape == (3, 7, 4)
    with pytest.raises(ValueError, match="temperature"):
        temperature_probs(logits, 0.0)
    with pytest.raises(ValueError, match="logits must have shape"):
        fit_temperature(logits[0, 0], np.zeros(4, int))


# --------------------------------------------------------------------------- conformal prediction


def test_class_scores_by_hand():
    probs = np.array([[0.2, 0.5, 0.3]])
    # ranks: class 1, class 2, class 0; with U = 0.5: 0.25, 0.5 + 0.15, 0.8 + 0.1
    np.testing.assert_allclose(class_scores(probs, np.array([0.5])), [[0.9, 0.25, 0.65]])
    # RAPS: lam * max(0, rank - k_reg) added, k_reg = 1
    np.testing.assert_allclose(class_scores(probs, np.array([0.5]), lam=0.1, k_reg=1), [[1.1, 0.25, 0.75]])


def exchangeable(n: int, rng: np.random.Generator, num_classes: int = 10):
    """A miscalibrated model's probabilities and labels drawn from a different distribution: only exchangeability
    holds, which is all conformal prediction needs."""
    logits = rng.normal(0, 2.0, size=(n, num_classes))
    labels = np.array(
        [rng.choice(num_classes, p=p) for p in softmax(0.5 * logits + rng.normal(size=num_classes), axis=-1)]
    )
    return softmax(logits, axis=-1), labels


@pytest.mark.parametrize("lam, k_reg", [(0.0, 0), (0.05, 2)])
def test_conformal_sets_cover_and_are_nested(lam, k_reg):
    probs, labels = exchangeable(6000, np.random.default_rng(0))
    cal, test = slice(0, 2000), slice(2000, None)
    sets = {}
    for alpha in (0.3, 0.2, 0.1, 0.05):
        predictor = calibrate(probs[cal], labels[cal], alpha, np.random.default_rng(1), lam, k_reg)
        sets[alpha] = predictor.predict(probs[test], np.random.default_rng(2))
        covered = coverage(sets[alpha], labels[test])
        assert 1 - alpha - 0.025 <= covered <= 1 - alpha + 0.025  # valid, and not by giving every class
        assert 1 <= mean_set_size(sets[alpha]) < 10
    for larger, smaller in ((0.3, 0.2), (0.2, 0.1), (0.1, 0.05)):
        assert (sets[larger] <= sets[smaller]).all() and mean_set_size(sets[larger]) < mean_set_size(sets[smaller])


def test_conformal_with_too_few_calibration_records_keeps_every_class():
    probs, labels = exchangeable(5, np.random.default_rng(3))
    predictor = calibrate(probs, labels, 0.1, np.random.default_rng(4))
    assert predictor.threshold == math.inf and predictor.predict(probs, np.random.default_rng(5)).all()
    with pytest.raises(ValueError, match="alpha"):
        calibrate(probs, labels, 1.5, np.random.default_rng(4))


# --------------------------------------------------------------------------- OOD scores


def test_energy_and_max_logit_scores():
    assert energy(np.zeros((1, 2)))[0] == pytest.approx(-math.log(2))
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 9.0]])
    np.testing.assert_allclose(energy(logits, 2.0), -2 * logsumexp(logits / 2, axis=-1))
    np.testing.assert_allclose(energy(logits), -torch.logsumexp(torch.tensor(logits), dim=-1).numpy())
    np.testing.assert_allclose(energy(logits, 1e-3), negative_max_logit(logits), atol=1e-2)  # T -> 0: -max logit
    np.testing.assert_array_equal(negative_max_logit(logits), [-3.0, -9.0])
    # in-distribution records have one large logit, OOD ones flat logits: both scores rank OOD higher
    rng = np.random.default_rng(0)
    id_logits = rng.normal(size=(200, 5)) + 6 * np.eye(5)[rng.integers(0, 5, 200)]
    ood_logits = rng.normal(size=(200, 5))
    is_ood = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    for score in (energy, negative_max_logit):
        assert metrics.auroc(np.r_[score(id_logits), score(ood_logits)], is_ood) > 0.95
    with pytest.raises(ValueError, match="temperature"):
        energy(logits, -1.0)
