"""The metrics against sklearn, torchmetrics and brute-force references, and as standalone `evaluate` modules."""

import ast
import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision, MulticlassCalibrationError

from baselines import metrics
from baselines.metrics import (
    EVALUATE_MODULES,
    accuracy,
    augrc,
    aupr,
    aurc,
    auroc,
    brier,
    detection_aurocs,
    ece,
    evaluate_module_path,
    fpr95,
    nll,
    reliability_bins,
)

SEEDS = range(5)


def classification_case(seed: int, num_samples: int = 300, num_classes: int = 6, ties: bool = False):
    """Probability rows and labels that are right a bit more often than chance.

    With ties, the rows come from a pool of 8, so that many confidences (and errors) repeat.
    """
    rng = np.random.default_rng(seed)
    pool = rng.dirichlet(np.full(num_classes, 0.7), size=8 if ties else num_samples)
    probs = pool[rng.integers(0, len(pool), num_samples)] if ties else pool
    labels = np.where(rng.random(num_samples) < 0.5, probs.argmax(axis=1), rng.integers(0, num_classes, num_samples))
    return probs, labels


def detection_case(seed: int, num_samples: int = 400, ties: bool = False):
    rng = np.random.default_rng(seed)
    positives = rng.random(num_samples) < 0.3
    scores = rng.normal(size=num_samples) + positives
    if ties:
        scores = np.round(scores)  # a handful of distinct values, each shared by both classes
    return scores, positives


# --- accuracy, NLL, Brier -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_nll_brier_match_sklearn(seed):
    probs, labels = classification_case(seed)
    classes = range(probs.shape[1])
    assert accuracy(probs, labels) == pytest.approx(accuracy_score(labels, probs.argmax(axis=1)), abs=1e-12)
    assert nll(probs, labels) == pytest.approx(log_loss(labels, probs, labels=classes), rel=1e-9)
    expected_brier = brier_score_loss(labels, probs, labels=classes, scale_by_half=False)
    assert brier(probs, labels) == pytest.approx(expected_brier, rel=1e-9)


def test_nll_and_brier_extremes():
    one_hot = np.eye(3)
    assert nll(one_hot, [0, 1, 2]) == 0.0
    assert brier(one_hot, [0, 1, 2]) == 0.0
    assert brier(one_hot, [1, 2, 0]) == pytest.approx(2.0)
    assert nll(one_hot, [1, 2, 0]) == math.inf  # no clipping


def test_torch_tensors_give_the_numpy_results():
    probs, labels = classification_case(0)
    as_bfloat16 = torch.tensor(probs, dtype=torch.bfloat16)
    assert accuracy(torch.tensor(probs), torch.tensor(labels)) == accuracy(probs, labels)
    as_float32 = torch.tensor(probs, dtype=torch.float32)
    assert ece(as_float32, torch.tensor(labels)) == pytest.approx(ece(probs, labels), abs=1e-6)
    assert nll(as_bfloat16, torch.tensor(labels)) == pytest.approx(nll(probs, labels), rel=1e-2)
    scores, positives = detection_case(0)
    assert auroc(torch.tensor(scores), torch.tensor(positives)) == auroc(scores, positives)


# --- ECE and reliability bins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("num_bins", [5, 15])
@pytest.mark.parametrize("seed", SEEDS)
def test_ece_matches_torchmetrics(seed, num_bins):
    probs, labels = classification_case(seed)
    reference = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=num_bins, norm="l1")
    expected = reference(torch.tensor(probs), torch.tensor(labels)).item()
    # torchmetrics computes in float32.
    assert ece(probs, labels, num_bins=num_bins) == pytest.approx(expected, abs=1e-6)


def test_ece_bins_are_closed_on_the_right():
    # Confidences 1 and 0.75 share the bin (0.5, 1]: mean confidence 0.875, accuracy 0.5. (torchmetrics keeps a
    # confidence of exactly 1 in a bin of its own and would give 0.5 * 1 + 0.5 * 0.25 = 0.625.)
    probs = [[1.0, 0.0], [0.75, 0.25]]
    assert ece(probs, [1, 0], num_bins=2) == pytest.approx(0.375)
    # A confidence on an inner edge belongs to the bin that edge closes.
    bins = reliability_bins([[0.5, 0.5], [0.6, 0.4]], [0, 0], num_bins=2)
    assert bins["count"].tolist() == [1, 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_reliability_bins_are_consistent(seed):
    probs, labels = classification_case(seed, num_classes=3)
    bins = reliability_bins(probs, labels, num_bins=15)
    assert bins["edges"].shape == (16,) and bins["count"].sum() == len(labels)
    filled = bins["count"] > 0
    assert not filled.all()  # with 3 classes no confidence is below 1/3: those bins are empty, hence NaN
    assert np.isnan(bins["confidence"][~filled]).all() and np.isnan(bins["accuracy"][~filled]).all()
    assert (bins["confidence"][filled] > bins["edges"][:-1][filled]).all()
    assert (bins["confidence"][filled] <= bins["edges"][1:][filled]).all()
    correct = probs.argmax(axis=1) == labels
    assert np.sum(bins["accuracy"][filled] * bins["count"][filled]) == pytest.approx(correct.sum())


# --- AURC -----------------------------------------------------------------------------------------------------


def torch_uncertainty_aurc(confidence, errors) -> float:
    """TorchUncertainty's AURC computation (sort by confidence, cumulative error rate, trapezoid over coverages
    1/N .. 1, divided by 1 - 1/N), in torch; stable sort, so ties stay in input order."""
    confidence, errors = torch.as_tensor(confidence), torch.as_tensor(errors, dtype=torch.float64)
    errors = errors[torch.argsort(confidence, descending=True, stable=True)]
    num_samples = len(errors)
    risks = errors.cumsum(0) / torch.arange(1, num_samples + 1)
    coverages = torch.arange(1, num_samples + 1, dtype=torch.float64) / num_samples
    return (torch.trapezoid(risks, coverages) / (1 - 1 / num_samples)).item()


def brute_force_aurc(confidence, errors) -> float:
    """The mean, over every ordering of the tied confidences, of the area with plain loops."""
    groups = [np.flatnonzero(confidence == value).tolist() for value in sorted(set(confidence), reverse=True)]
    areas = []
    for orderings in itertools.product(*(itertools.permutations(group) for group in groups)):
        ranked = [errors[i] for ordering in orderings for i in ordering]
        risks = [sum(ranked[: k + 1]) / (k + 1) for k in range(len(ranked))]
        areas.append(sum((a + b) / 2 for a, b in itertools.pairwise(risks)) / (len(risks) - 1))
    return float(np.mean(areas))


@pytest.mark.parametrize("seed", SEEDS)
def test_aurc_matches_torch_uncertainty_without_ties(seed):
    probs, labels = classification_case(seed)
    errors = probs.argmax(axis=1) != labels
    assert aurc(probs, labels) == pytest.approx(torch_uncertainty_aurc(probs.max(axis=1), errors), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_aurc_with_ties_is_the_mean_over_tie_orderings(seed):
    rng = np.random.default_rng(seed)
    uncertainty = rng.integers(0, 3, 9).astype(float)  # three tied groups
    errors = rng.random(9) < 0.5
    labels = np.zeros(9, dtype=int)
    probs = np.where(errors[:, None], [[0.2, 0.8]], [[0.8, 0.2]])  # wrong exactly where errors is set
    assert aurc(probs, labels, uncertainty=uncertainty) == pytest.approx(brute_force_aurc(-uncertainty, errors))
    # ... and does not depend on the input order.
    order = rng.permutation(9)
    assert aurc(probs[order], labels[order], uncertainty[order]) == pytest.approx(aurc(probs, labels, uncertainty))


@pytest.mark.parametrize("seed", SEEDS)
def test_aurc_with_many_ties_matches_brute_force(seed):
    probs, labels = classification_case(seed, num_samples=10, ties=True)
    errors = (probs.argmax(axis=1) != labels).tolist()
    assert aurc(probs, labels) == pytest.approx(brute_force_aurc(probs.max(axis=1), errors))


def test_aurc_hand_computed():
    # TorchUncertainty's documented example: confidences 0.8 (right), 0.7 (right), 0.6 (wrong): risks 0, 0, 1/3.
    assert aurc([[0.7, 0.3], [0.6, 0.4], [0.8, 0.2]], [0, 1, 0]) == pytest.approx(1 / 12)
    # A binary task may give the probability of class 1 only.
    p1 = np.array([0.9, 0.2, 0.6, 0.45])
    assert aurc(p1, [1, 1, 0, 0]) == aurc(np.stack([1 - p1, p1], axis=1), [1, 1, 0, 0])
    assert math.isnan(aurc([[0.3, 0.7]], [1]))


def brute_force_augrc(uncertainty, errors) -> float:
    """The mean, over every ordering of the tied uncertainties (most certain first), of the area under the share
    of samples both accepted and wrong, with plain loops."""
    groups = [np.flatnonzero(uncertainty == value).tolist() for value in sorted(set(uncertainty))]
    num_samples = len(errors)
    areas = []
    for orderings in itertools.product(*(itertools.permutations(group) for group in groups)):
        ranked = [errors[i] for ordering in orderings for i in ordering]
        risks = [sum(ranked[:k]) / num_samples for k in range(num_samples + 1)]
        areas.append(sum((a + b) / 2 / num_samples for a, b in itertools.pairwise(risks)))
    return float(np.mean(areas))


@pytest.mark.parametrize("seed", SEEDS)
def test_augrc_from_any_uncertainty_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    probs, labels = classification_case(seed, num_samples=9)
    errors = (probs.argmax(axis=1) != labels).tolist()
    uncertainty = rng.integers(0, 3, 9).astype(float)  # three tied groups
    assert augrc(probs, labels, uncertainty) == pytest.approx(brute_force_augrc(uncertainty, errors), abs=1e-12)
    assert augrc(probs, labels) == pytest.approx(brute_force_augrc(1 - probs.max(axis=1), errors), abs=1e-12)
    order = rng.permutation(9)
    assert augrc(probs[order], labels[order], uncertainty[order]) == pytest.approx(augrc(probs, labels, uncertainty))


def test_augrc_hand_computed_and_bounds():
    # Ranked errors 0, 0, 1: generalized risks 0, 0, 0, 1/3 over coverages 0, 1/3, 2/3, 1: area (1/3)(1/6) = 1/18.
    assert augrc([[0.7, 0.3], [0.6, 0.4], [0.8, 0.2]], [0, 1, 0]) == pytest.approx(1 / 18)
    probs, labels = classification_case(0)
    errors = probs.argmax(axis=1) != labels
    # An uncertainty that ranks every error last is the best possible; ranking them first is the worst.
    best, worst = augrc(probs, labels, errors.astype(float)), augrc(probs, labels, -errors.astype(float))
    assert 0 <= best < augrc(probs, labels) < worst <= 0.5
    rate = errors.mean()
    assert best == pytest.approx(rate**2 / 2) and worst == pytest.approx(rate - rate**2 / 2)


# --- AUROC, AUPR, FPR95 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_aupr_match_sklearn_and_torchmetrics(seed, ties):
    scores, positives = detection_case(seed, ties=ties)
    assert auroc(scores, positives) == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)
    assert aupr(scores, positives) == pytest.approx(average_precision_score(positives, scores), abs=1e-12)
    preds, target = torch.tensor(scores), torch.tensor(positives, dtype=torch.long)
    assert auroc(scores, positives) == pytest.approx(BinaryAUROC()(preds, target).item(), abs=1e-6)
    assert aupr(scores, positives) == pytest.approx(BinaryAveragePrecision()(preds, target).item(), abs=1e-6)


def brute_force_rates(scores, positives) -> list[tuple[float, float]]:
    """(TPR, FPR) when calling positive every record scored at least t, for each distinct score t, highest first."""
    scores, positives = list(scores), [bool(p) for p in positives]
    num_pos, num_neg = sum(positives), len(positives) - sum(positives)
    rates = []
    for threshold in sorted(set(scores), reverse=True):
        called = [s >= threshold for s in scores]
        true_pos = sum(c and p for c, p in zip(called, positives, strict=True))
        false_pos = sum(c and not p for c, p in zip(called, positives, strict=True))
        rates.append((true_pos / num_pos, false_pos / num_neg))
    return rates


def brute_force_fpr95(scores, positives) -> float:
    """The FPR at the first threshold, from the highest down, with TPR >= 0.95."""
    return next(fpr for tpr, fpr in brute_force_rates(scores, positives) if tpr >= 0.95)


def closest_tpr_fpr95(scores, positives) -> float:
    """The rule before TorchUncertainty 0.13: the FPR where TPR is closest to 0.95 (the lowest threshold on a tie)."""
    rates = brute_force_rates(scores, positives)
    distance = [abs(tpr - 0.95) for tpr, _ in rates]
    return rates[len(rates) - 1 - distance[::-1].index(min(distance))][1]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_fpr95_matches_brute_force(seed, ties):
    scores, positives = detection_case(seed, ties=ties)
    assert fpr95(scores, positives) == pytest.approx(brute_force_fpr95(scores, positives), abs=1e-12)


def test_fpr95_differs_from_the_closest_tpr_rule_where_that_stops_below_095():
    differing = 0
    for seed in range(40):
        # With 4-13 positives, 0.95 falls between two TPRs, and the closer one is often below it.
        scores, positives = detection_case(seed, num_samples=30)
        assert fpr95(scores, positives) == pytest.approx(brute_force_fpr95(scores, positives), abs=1e-12)
        differing += fpr95(scores, positives) != pytest.approx(closest_tpr_fpr95(scores, positives), abs=1e-12)
    assert differing >= 10  # the two rules disagree on a good share of such cases


def test_fpr95_hand_computed():
    # TorchUncertainty's documented example: TPR first reaches 0.95 (at 1) at 0.2, where 3 of the 4 negatives score
    # higher.
    assert fpr95([0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1], [1, 0, 1, 0, 0, 1, 0]) == 0.75
    # 20 positives: TPR reaches 0.95 at the 19th, before the one negative (the old rule, taking the lowest of the
    # thresholds at TPR 0.95, counted that negative: 1.0).
    scores = np.r_[np.arange(20, 1, -1), 1.5, 1.0]
    positives = np.r_[np.ones(19), 0, 1]
    assert fpr95(scores, positives) == 0.0
    assert closest_tpr_fpr95(scores, positives) == 1.0
    # 10 positives: TPR 0.9 is as close to 0.95 as 1.0; the old rule could stop at 0.9, the new one goes on to 1.
    scores = np.r_[np.arange(20, 11, -1), 11.5, 11.0]
    positives = np.r_[np.ones(9), 0, 1]
    assert fpr95(scores, positives) == 1.0
    # Tied scores are one threshold: a positive tied with a negative brings it along.
    assert fpr95([3.0, 2.0, 2.0, 1.0], [1, 1, 0, 0]) == 0.5


def test_detection_aurocs_on_a_constructed_case():
    switched = np.array([0, 0, 0, 1, 1, 0, 0, 1], dtype=bool)
    corrupted = np.array([1, 0, 1, 0, 0, 0, 1, 0])
    uncertainties = {
        "epistemic": switched + 0.1 * np.arange(8),  # ranks every switched record above every other
        "aleatoric": -switched.astype(float),  # ranks them below
        "total": np.arange(8.0),
    }
    result = detection_aurocs(uncertainties, {"switched": switched, "corrupted": corrupted, "clean": np.zeros(8)})
    assert set(result) == {(u, f) for u in uncertainties for f in ("switched", "corrupted", "clean")}
    assert result["epistemic", "switched"] == 1.0
    assert result["aleatoric", "switched"] == 0.0
    assert result["total", "corrupted"] == pytest.approx(roc_auc_score(corrupted, np.arange(8.0)))
    assert all(math.isnan(result[u, "clean"]) for u in uncertainties)


# --- bad inputs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([[2.0, -1.0], [0.5, 0.5]], [0, 1]), "probs"),  # logits
        (lambda: nll([[0.6, 0.6], [0.5, 0.5]], [0, 1]), "probs"),  # rows summing to 1.2
        (lambda: brier([0.5, 0.5], [0]), "probs"),  # not (N, K)
        (lambda: ece([[0.5, 0.5]], [2]), "labels"),  # out of range
        (lambda: ece([[0.5, 0.5]], [0, 1]), "labels"),  # wrong length
        (lambda: ece([[0.5, 0.5]], [0.5]), "labels"),  # not an index
        (lambda: ece([[0.5, 0.5]], [0], num_bins=0), "num_bins"),
        (lambda: aurc([[0.5, 0.5], [0.9, 0.1]], [0, 1], uncertainty=[0.1]), "uncertainty"),
        (lambda: auroc([0.1, np.nan], [0, 1]), "scores"),
        (lambda: aupr([0.1, 0.2], [1, 1]), "positives"),  # a single class
        (lambda: fpr95([0.1, 0.2], [0, 2]), "positives"),  # not 0/1
        (lambda: detection_aurocs({"u": [0.1, 0.2]}, {"f": [0, 1, 1]}), "flags"),
        (lambda: detection_aurocs({"u": [0.1, 0.2], "v": [0.3]}, {"f": [0, 1]}), "uncertainties"),
        (lambda: evaluate_module_path("accuracy_score"), "evaluate module"),
    ],
)
def test_bad_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- evaluate modules -----------------------------------------------------------------------------------------
# Each module repeats its metric's arithmetic so that it stands alone (numpy only, loadable from a copied folder or a
# Hub Space). These tests load copies made outside the package and check them against `baselines.metrics`, the one
# implementation the project's own code uses, on random data: so the copies cannot drift from it.

STANDALONE_IMPORTS = {"datasets", "evaluate", "numpy", "scipy", "sklearn"}
PROBABILITY_MODULES = {"nll": "nll", "brier": "brier", "ece": "ece", "aurc": "aurc"}
DETECTION_MODULES = {"ood_auroc": "auroc", "ood_aupr": "aupr", "fpr95": "fpr95"}


@pytest.fixture
def offline_evaluate(monkeypatch):
    """`evaluate`, with the Hub and every remote look-up switched off."""
    import datasets.config
    import evaluate.config
    import huggingface_hub.constants

    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        monkeypatch.setenv(variable, "1")
    # The libraries read these variables once, at import: set the values they already hold too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    import evaluate

    return evaluate


@pytest.fixture
def load_copy(offline_evaluate, tmp_path):
    """Loads a module from a copy of its folder made in a temporary directory, outside the package."""

    def load(name: str, config: str | None = None):
        copy = tmp_path / "copies" / name
        if not copy.exists():
            shutil.copytree(evaluate_module_path(name), copy)
        return offline_evaluate.load(str(copy), config, cache_dir=str(tmp_path / "cache"))

    return load


@pytest.mark.parametrize("name", EVALUATE_MODULES)
def test_every_evaluate_module_imports_nothing_of_the_project_and_has_a_card(name):
    folder = Path(evaluate_module_path(name))
    tree = ast.parse((folder / f"{name}.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {module.split(".")[0] for module in imported} <= STANDALONE_IMPORTS
    card = (folder / "README.md").read_text()
    for heading in ("Metric description", "How to use", "Inputs", "Output values", "Citation", "Further references"):
        assert f"## {heading}\n" in card


@pytest.mark.parametrize("name", EVALUATE_MODULES)
def test_each_module_card_gives_its_citation_references_and_inputs(load_copy, name):
    module = load_copy(name)
    card = (Path(evaluate_module_path(name)) / "README.md").read_text()
    assert module.citation.strip() and module.citation.strip() in card
    assert module.homepage.startswith("https://") and module.reference_urls
    assert all(f"<{url}>" in card for url in module.reference_urls)
    assert all(f"**`{feature}`**" in card for feature in module.features)


@pytest.mark.parametrize("seed", range(3))
def test_accuracy_takes_class_ids_or_probability_rows_as_baselines_accuracy(load_copy, seed):
    probs, labels = classification_case(seed)
    expected = accuracy(probs, labels)
    by_ids = load_copy("accuracy").compute(predictions=probs.argmax(axis=1), references=labels)
    by_rows = load_copy("accuracy", "probabilities").compute(prediction_probabilities=probs, references=labels)
    assert by_ids == by_rows == {"accuracy": expected}
    assert "bezirganyan2025luma" in load_copy("accuracy").citation


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", PROBABILITY_MODULES)
def test_probability_modules_agree_with_baselines_metrics(load_copy, name, ties):
    function = getattr(metrics, PROBABILITY_MODULES[name])
    module = load_copy(name)
    for seed in range(3):
        probs, labels = classification_case(seed, ties=ties)
        result = module.compute(prediction_probabilities=probs, references=labels)
        assert result == {PROBABILITY_MODULES[name]: pytest.approx(function(probs, labels), abs=1e-12)}
    # Batches added one by one give the same number.
    for start in range(0, len(labels), 100):
        module.add_batch(prediction_probabilities=probs[start : start + 100], references=labels[start : start + 100])
    assert module.compute() == result


def test_module_options_agree_with_baselines_metrics(load_copy):
    probs, labels = classification_case(2, ties=True)
    uncertainty = np.round(np.random.default_rng(2).random(len(labels)), 1)  # ties of their own
    result = load_copy("ece").compute(prediction_probabilities=probs, references=labels, num_bins=7)
    assert result["ece"] == pytest.approx(ece(probs, labels, 7), abs=1e-12)
    on_edge = [[0.75, 0.25], [0.9, 0.1]]  # 0.75 closes the third of 4 bins: it must not share the fourth with 0.9
    result = load_copy("ece").compute(prediction_probabilities=on_edge, references=[0, 1], num_bins=4)
    assert result["ece"] == pytest.approx(ece(on_edge, [0, 1], 4), abs=1e-12)
    result = load_copy("aurc").compute(prediction_probabilities=probs, references=labels, uncertainties=uncertainty)
    assert result["aurc"] == pytest.approx(aurc(probs, labels, uncertainty), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", DETECTION_MODULES)
def test_detection_modules_take_prediction_scores_and_agree_with_baselines_metrics(load_copy, name, ties):
    function = getattr(metrics, DETECTION_MODULES[name])
    module = load_copy(name)
    exact = np.random.default_rng(9).normal(size=60) + (np.arange(60) < 20), np.arange(60) < 20  # TPR hits 0.95
    for scores, positives in [*(detection_case(seed, ties=ties) for seed in range(3)), exact]:
        result = module.compute(prediction_scores=scores, references=positives.astype(int))
        assert result == {DETECTION_MODULES[name]: pytest.approx(function(scores, positives), abs=1e-12)}


def test_probability_modules_combine_on_one_set_of_inputs(load_copy, offline_evaluate):
    probs, labels = classification_case(4)
    combined = offline_evaluate.combine([load_copy("accuracy", "probabilities"), *map(load_copy, PROBABILITY_MODULES)])
    result = combined.compute(prediction_probabilities=probs, references=labels)
    assert result == pytest.approx(
        {name: getattr(metrics, name)(probs, labels) for name in ["accuracy", *PROBABILITY_MODULES]}
    )


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("nll", {"prediction_probabilities": [[2.0, -1.0]], "references": [0]}, "not logits"),
        ("brier", {"prediction_probabilities": [[0.6, 0.6]], "references": [0]}, "sum to 1"),
        ("ece", {"prediction_probabilities": [[0.5, 0.5]], "references": [2]}, "references must lie in"),
        ("aurc", {"prediction_probabilities": [[0.5, 0.5]], "references": [0], "uncertainties": [1, 2]}, "uncertaint"),
        ("ood_auroc", {"prediction_scores": [0.1, 0.2], "references": [1, 1]}, "both positives"),
        ("fpr95", {"prediction_scores": [0.1, 0.2], "references": [0, 2]}, "0/1"),
    ],
)
def test_modules_refuse_bad_inputs_with_a_clear_error(load_copy, name, inputs, message):
    with pytest.raises(ValueError, match=message):
        load_copy(name).compute(**inputs)
