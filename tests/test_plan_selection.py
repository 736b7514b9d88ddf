"""Selection transforms against slow, obviously correct references written out here."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import binom, chisquare
from threadpoolctl import threadpool_info, threadpool_limits

from luma_builders.blas import one_blas_thread
from luma_builders.plan.selection import (
    choose_conflicts,
    diversity_sample,
    diversity_weights,
    mean_distances,
    nearest_class_distances,
    switch_labels,
    switch_record_labels,
)


def reference_class_distances(features, labels, query, num_classes, k):
    row = []
    for c in range(num_classes):
        distances = sorted(
            float(np.linalg.norm(features[query] - features[j]))
            for j in range(len(features))
            if labels[j] == c and j != query
        )
        row.append(np.mean(distances[:k]) if distances else np.inf)
    return np.array(row)


def reference_switch(features, labels, chosen, num_classes, k):
    new_labels = labels.copy()
    for q in np.flatnonzero(chosen):
        distances = reference_class_distances(features, labels, q, num_classes, k)
        distances[labels[q]] = np.inf
        new_labels[q] = int(np.argmin(distances))
    return new_labels


def uneven_data(seed, n=40, num_classes=6, dims=5):
    """Classes of very different sizes (some below k) and one empty class, the last."""
    rng = np.random.default_rng(seed)
    weights = np.array([8, 4, 1, 0.5, 0.3, 0.0])[:num_classes]
    labels = rng.choice(num_classes, size=n, p=weights / weights.sum())
    features = rng.normal(size=(n, dims)) + labels[:, None] * 0.5
    return features, labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_nearest_class_distances_match_reference(seed, k):
    features, labels = uneven_data(seed)
    queries = np.arange(len(labels))
    expected = np.array([reference_class_distances(features, labels, q, 6, k) for q in queries])
    for block_size in (1, 7, 1024):
        got = nearest_class_distances(features, labels, queries, 6, k=k, block_size=block_size)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.isinf(got[:, 5]).all()


def test_nearest_class_distances_float32_close_to_float64_reference():
    # The hard case for ||a||^2 + ||b||^2 - 2ab: tight classes (spread 1e-3) in two blobs 100 apart, far from the
    # overall mean as well as from the origin. A single global centring loses every digit here in float32.
    rng = np.random.default_rng(0)
    labels = rng.integers(6, size=60)
    blob = 100.0 + 100.0 * (labels >= 3)
    features = (blob[:, None] + 1e-3 * (rng.normal(size=(60, 16)) + labels[:, None])).astype(np.float32)
    queries = np.array([0, 3, 3, 59])
    expected = np.array([reference_class_distances(features.astype(np.float64), labels, q, 6, 5) for q in queries])
    got = nearest_class_distances(features, labels, queries, 6)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_nearest_class_distances_do_not_depend_on_the_blas_threads():
    # OpenBLAS rounds a product differently on one and on two threads (these differ in their last bits when the
    # products are left to it); exact ties between classes must not depend on the machine's cores.
    rng = np.random.default_rng(5)
    labels = rng.integers(10, size=3000)
    features = rng.normal(size=(3000, 256)).astype(np.float32)
    queries = np.arange(0, 3000, 3)
    with threadpool_limits(limits=2, user_api="blas"):
        on_two = nearest_class_distances(features, labels, queries, 10)
    with threadpool_limits(limits=1, user_api="blas"):
        on_one = nearest_class_distances(features, labels, queries, 10)
    assert on_two.tobytes() == on_one.tobytes()


def test_one_blas_thread_limits_and_restores():
    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    assert before  # numpy's BLAS is found
    with one_blas_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 2, 5])
def test_switch_labels_matches_reference(seed, k):
    features, labels = uneven_data(seed)
    new_labels, switched = switch_labels(features, labels, 0.5, np.random.default_rng(seed), 6, k=k)
    chosen = np.random.default_rng(seed).random(len(labels)) < 0.5
    np.testing.assert_array_equal(switched, chosen)
    np.testing.assert_array_equal(new_labels, reference_switch(features, labels, chosen, 6, k))


def test_switch_rate_and_switched_labels():
    rng = np.random.default_rng(11)
    n, num_classes = 5000, 10
    labels = rng.integers(num_classes, size=n)
    features = rng.normal(size=(n, 8)).astype(np.float32)
    new_labels, switched = switch_labels(features, labels, 0.3, rng, num_classes)
    low, high = binom.interval(0.99, n, 0.3)
    assert low <= switched.sum() <= high
    assert (new_labels[switched] != labels[switched]).all()
    np.testing.assert_array_equal(new_labels[~switched], labels[~switched])
    assert new_labels.min() >= 0 and new_labels.max() < num_classes


def test_switch_labels_extremes():
    features, labels = uneven_data(1)
    none, switched = switch_labels(features, labels, 0.0, np.random.default_rng(0), 6)
    assert not switched.any() and (none == labels).all()
    _, switched = switch_labels(features, labels, 1.0, np.random.default_rng(0), 6)
    assert switched.all()


def test_nothing_to_switch_to_when_every_other_class_is_empty():
    features, labels = np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10, dtype=int)
    new_labels, switched = switch_labels(features, labels, 1.0, np.random.default_rng(0), 3)
    assert not switched.any() and (new_labels == 0).all()
    new_labels, switched, nearest = switch_record_labels({"a": features}, labels, 1.0, np.random.default_rng(0), 3)
    assert not switched.any() and (new_labels == 0).all() and (nearest["a"] == 0).all()


def test_switch_record_labels_one_modality_equals_switch_labels():
    features, labels = uneven_data(2, n=80)
    expected_labels, expected_switched = switch_labels(features, labels, 0.4, np.random.default_rng(5), 6)
    new_labels, switched, nearest = switch_record_labels({"image": features}, labels, 0.4, np.random.default_rng(5), 6)
    np.testing.assert_array_equal(new_labels, expected_labels)
    np.testing.assert_array_equal(switched, expected_switched)
    np.testing.assert_array_equal(nearest["image"], expected_labels)


def reference_record_switch(features_by_modality, labels, chosen, num_classes, k):
    queries = np.flatnonzero(chosen)
    total = np.zeros((len(queries), num_classes))
    nearest = {}
    for name, features in features_by_modality.items():
        distances = np.array([reference_class_distances(features, labels, q, num_classes, k) for q in queries])
        distances[np.arange(len(queries)), labels[queries]] = np.inf
        total += distances / np.median(distances[np.isfinite(distances)])
        nearest[name] = labels.copy()
        nearest[name][queries] = distances.argmin(axis=1)
    new_labels = labels.copy()
    new_labels[queries] = total.argmin(axis=1)
    return new_labels, nearest


@pytest.mark.parametrize("seed", range(3))
def test_switch_record_labels_normalises_each_modality(seed):
    rng = np.random.default_rng(seed)
    features, labels = uneven_data(seed, n=50)
    modalities = {"image": features, "audio": 1000.0 * rng.normal(size=(50, 3)) + labels[:, None]}
    new_labels, switched, nearest = switch_record_labels(modalities, labels, 0.6, np.random.default_rng(seed), 6)
    chosen = np.random.default_rng(seed).random(50) < 0.6
    expected_labels, expected_nearest = reference_record_switch(modalities, labels, chosen, 6, 5)
    np.testing.assert_array_equal(switched, chosen)
    np.testing.assert_array_equal(new_labels, expected_labels)
    for name in modalities:
        np.testing.assert_array_equal(nearest[name], expected_nearest[name])
    # The scale of a modality does not change the outcome.
    modalities["audio"] = modalities["audio"] / 1000.0
    rescaled, _, _ = switch_record_labels(modalities, labels, 0.6, np.random.default_rng(seed), 6)
    np.testing.assert_array_equal(rescaled, new_labels)


def clustered(seed, core=80, halo=20, dims=16):
    """A tight core around the origin and a wide halo: compact draws come from the core."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(scale=0.3, size=(core, dims)), rng.normal(scale=5.0, size=(halo, dims))])


def test_diversity_k0_is_uniform():
    features = clustered(0)
    weights = diversity_weights(features, 0.0)
    np.testing.assert_allclose(weights / weights.sum(), 1.0 / len(features))
    np.testing.assert_allclose(diversity_weights(features, 0.0, normalize=True), weights)


def test_diversity_normalised_compactness_draws_tighter_sets():
    spreads = {0.0: [], 2.0: []}
    for seed in range(8):
        features = clustered(seed)
        for compactness in spreads:
            chosen, _ = diversity_sample(features, 20, compactness, 3, np.random.default_rng(seed), normalize=True)
            spreads[compactness].append(pdist(features[chosen]).mean())
    assert np.mean(spreads[2.0]) < 0.5 * np.mean(spreads[0.0])


def test_diversity_sample_returns_distinct_sorted_indices_deterministically():
    features = clustered(3)
    chosen, weights = diversity_sample(features, 30, 1.5, 4, np.random.default_rng(9), normalize=True)
    assert len(chosen) == 30 and len(np.unique(chosen)) == 30
    assert (np.diff(chosen) > 0).all()
    np.testing.assert_allclose(weights, diversity_weights(features, 1.5, normalize=True)[chosen])
    again, _ = diversity_sample(features, 30, 1.5, 4, np.random.default_rng(9), normalize=True)
    np.testing.assert_array_equal(chosen, again)
    everything, _ = diversity_sample(features, len(features), 1.0, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(everything, np.arange(len(features)))


def test_diversity_sample_keeps_the_most_spread_draw():
    features = clustered(4)
    chosen, _ = diversity_sample(features, 10, 1.0, 5, np.random.default_rng(2), normalize=True)
    rng = np.random.default_rng(2)
    weights = diversity_weights(features, 1.0, normalize=True)
    draws = [rng.choice(len(features), size=10, replace=False, p=weights / weights.sum()) for _ in range(5)]
    best = max(draws, key=lambda draw: pdist(features[draw]).mean())
    np.testing.assert_array_equal(chosen, np.sort(best))
    # Identical samples: every draw has spread 0, and the first one is kept.
    chosen, _ = diversity_sample(np.ones((10, 2)), 3, 1.0, 4, np.random.default_rng(2))
    first = np.random.default_rng(2).choice(10, size=3, replace=False, p=np.full(10, 0.1))
    np.testing.assert_array_equal(chosen, np.sort(first))


def reference_diversity_sample(features, size, compactness, num_sampling, rng):
    """The selection as first written: pdist's mean of every draw, the first largest kept."""
    probabilities = diversity_weights(features, compactness) / diversity_weights(features, compactness).sum()
    draws = [rng.choice(len(features), size=size, replace=False, p=probabilities) for _ in range(num_sampling)]
    return np.sort(max(draws, key=lambda draw: pdist(features[draw]).mean() if size > 1 else 0.0))


@pytest.mark.parametrize(("n", "size"), [(12, 6), (12, 12), (40, 2), (300, 20)])
def test_diversity_sample_chooses_as_pdist_does_even_on_ties(n, size):
    # (12, 12): every draw is the same set in another order, its spreads equal but for rounding
    for seed in range(40):
        rng = np.random.default_rng(seed)
        features = rng.normal(size=(n, 5)) + 1e3 * rng.normal(size=5)  # far from the origin: the Gram route must centre
        chosen, _ = diversity_sample(features, size, 1.0, 10, np.random.default_rng(seed))
        expected = reference_diversity_sample(features, size, 1.0, 10, np.random.default_rng(seed))
        np.testing.assert_array_equal(chosen, expected)


@pytest.mark.parametrize(("n", "size", "count"), [(30, 20, 5), (1000, 10, 3)])  # one product, or one per draw
def test_mean_distances_equal_pdist_means(n, size, count):
    rng = np.random.default_rng(n)
    features = rng.normal(size=(n, 64)).astype(np.float32) + 50.0
    features[1] = features[0]  # a duplicate: its squared distance may round below zero
    draws = [rng.choice(n, size=size, replace=False) for _ in range(count)]
    draws[0][:2] = [0, 1]
    expected = [pdist(features[draw].astype(np.float64)).mean() for draw in draws]
    np.testing.assert_allclose(mean_distances(features, draws), expected, rtol=1e-12)


def test_raw_distances_above_one_flatten_the_weights():
    features = 10.0 * np.random.default_rng(0).normal(size=(500, 8))  # distances to the mean ~ 28
    raw = diversity_weights(features, 2.0)
    assert raw.min() > 1.0 and raw.max() < 1.02  # every weight ~ 1: sampling is all but uniform
    normalised = diversity_weights(features, 2.0, normalize=True)
    assert normalised.max() / normalised.min() > 3.0
    # Raising the compactness barely moves the raw probabilities but does move the normalised ones.
    assert np.abs(diversity_weights(features, 4.0) / raw - 1).max() < 0.02
    assert np.abs(diversity_weights(features, 4.0, normalize=True) / normalised - 1).max() > 1.0


def conflict_labels(seed, num_classes=5):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 30, size=num_classes)
    return rng.permutation(np.repeat(np.arange(num_classes), sizes))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_conflicts_per_class_count_and_donors(seed, ratio):
    labels = conflict_labels(seed)
    conflicted, modality, donor = choose_conflicts(
        labels, ratio, ("image", "audio", "text"), np.random.default_rng(0), 5
    )
    position = np.empty(len(labels), dtype=int)
    for c in range(5):
        members = np.flatnonzero(labels == c)
        position[members] = np.arange(len(members))
        assert conflicted[members].sum() == round(ratio * len(members))
    for record in range(len(labels)):
        if not conflicted[record]:
            assert modality[record] == -1 and donor[record] == -1
            continue
        donor_class = (labels[record] + 1) % 5
        assert labels[donor[record]] == donor_class
        assert position[donor[record]] == position[record] % np.sum(labels == donor_class)
        assert 0 <= modality[record] < 3


def test_conflict_modality_choice_is_uniform():
    labels = np.repeat(np.arange(42), 200)
    conflicted, modality, _ = choose_conflicts(labels, 0.5, ("image", "audio", "text"), np.random.default_rng(1), 42)
    assert conflicted.sum() == 42 * 100
    counts = np.bincount(modality[conflicted], minlength=3)
    assert chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: switch_labels(np.zeros((3, 2)), np.array([0, 1, 1]), 1.5, np.random.default_rng(0), 2), "p"),
        (lambda: switch_labels(np.zeros((3, 2)), np.array([0, 1]), 0.5, np.random.default_rng(0), 2), "labels"),
        (lambda: switch_labels(np.zeros(3), np.array([0, 1, 1]), 0.5, np.random.default_rng(0), 2), "features"),
        (lambda: switch_labels(np.zeros((3, 2)), np.array([0, 1, 2]), 0.5, np.random.default_rng(0), 2), "labels"),
        (lambda: nearest_class_distances(np.zeros((3, 2)), np.array([0, 1, 1]), np.array([3]), 2), "queries"),
        (lambda: nearest_class_distances(np.zeros((3, 2)), np.array([0, 1, 1]), np.array([0]), 2, k=0), "k"),
        (lambda: switch_record_labels({}, np.array([0, 1]), 0.5, np.random.default_rng(0), 2), "features_by_modality"),
        (
            lambda: switch_record_labels({"a": np.zeros((3, 2))}, np.array([0, 1]), 0.5, np.random.default_rng(0), 2),
            "features_by_modality",
        ),
        (lambda: choose_conflicts(np.array([0, 1]), -0.1, ("a",), np.random.default_rng(0), 2), "ratio"),
        (lambda: choose_conflicts(np.array([0, 1]), 0.5, (), np.random.default_rng(0), 2), "modalities"),
        (lambda: diversity_sample(np.zeros((3, 2)), 4, 1.0, 1, np.random.default_rng(0)), "size"),
        (lambda: diversity_sample(np.zeros((3, 2)), 2, -1.0, 1, np.random.default_rng(0)), "compactness"),
        (lambda: diversity_sample(np.zeros((3, 2)), 2, 1.0, 0, np.random.default_rng(0)), "num_sampling"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
