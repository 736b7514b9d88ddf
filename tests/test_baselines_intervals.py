"""Bootstrap intervals and paired tests: the weighted metrics agree with the plain ones, resampling is stratified,
and the tests reject only real differences."""

import numpy as np
import pytest

from baselines import metrics
from baselines.intervals import (
    bootstrap_counts,
    holm,
    interval,
    paired_p_value,
    weighted_auroc,
    weighted_ece,
    weighted_mean,
)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(5, 0.5), size=n)
    labels = rng.integers(0, 5, n)
    scores = np.round(rng.normal(size=n), 1)  # ties on purpose
    positives = rng.random(n) < 0.3
    return probs, labels, scores, positives


def test_weighted_metrics_with_unit_counts_are_the_plain_metrics():
    probs, labels, scores, positives = _data()
    ones = np.ones((1, len(labels)))
    correct = probs.argmax(1) == labels
    assert weighted_mean(correct, ones)[0] == pytest.approx(metrics.accuracy(probs, labels))
    assert weighted_ece(probs.max(1), correct, ones)[0] == pytest.approx(metrics.ece(probs, labels))
    assert weighted_auroc(scores, positives, ones)[0] == pytest.approx(metrics.auroc(scores, positives))


def test_weighted_metrics_with_counts_equal_the_metrics_of_the_resampled_records():
    probs, labels, scores, positives = _data()
    counts = bootstrap_counts(positives, 5, np.random.default_rng(1))
    correct = probs.argmax(1) == labels
    for row in counts:
        chosen = np.repeat(np.arange(len(labels)), row)
        assert weighted_auroc(scores, positives, row[None])[0] == pytest.approx(
            metrics.auroc(scores[chosen], positives[chosen])
        )
        assert weighted_ece(probs.max(1), correct, row[None])[0] == pytest.approx(
            metrics.ece(probs[chosen], labels[chosen])
        )


def test_bootstrap_counts_keep_each_stratum_size():
    strata = np.r_[np.zeros(70, bool), np.ones(30, bool)]
    counts = bootstrap_counts(strata, 200, np.random.default_rng(0))
    assert counts.shape == (200, 100)
    assert (counts[:, :70].sum(1) == 70).all() and (counts[:, 70:].sum(1) == 30).all()
    assert counts[:, :70].std() > 0  # not the identity


def test_interval_covers_the_mean_of_a_known_distribution():
    rng = np.random.default_rng(0)
    values = rng.random(400) < 0.7
    counts = bootstrap_counts(np.zeros(400), 2000, rng)
    low, high = interval(weighted_mean(values, counts))
    half_width = 1.96 * np.sqrt(values.mean() * (1 - values.mean()) / 400)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * half_width, rel=0.15)


def test_paired_p_value_separates_real_and_null_differences():
    rng = np.random.default_rng(0)
    assert paired_p_value(rng.normal(0.05, 0.01, 1000)) < 0.01
    assert paired_p_value(rng.normal(0.0, 0.01, 1000)) > 0.2


def test_holm_adjusts_in_order_and_keeps_nan():
    adjusted = holm([0.01, 0.04, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.03)
    assert adjusted[3] == pytest.approx(0.06) and adjusted[1] == pytest.approx(0.06)
    assert np.isnan(adjusted[2])
