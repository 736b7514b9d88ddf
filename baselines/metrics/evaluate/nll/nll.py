"""Negative log-likelihood as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import nll
from baselines.metrics.evaluate_info import PROBABILITIES, metric_info

_DESCRIPTION = """Negative log-likelihood, -mean_i log p_{i, y_i} (natural log, no clipping: a zero probability on
the reference class gives inf)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, K) probability rows, each summing to 1.
    references: (N,) class indices.
Returns:
    nll: the mean negative log-likelihood, in nats.
"""


class NLL(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, PROBABILITIES)

    def _compute(self, predictions, references):
        return {"nll": nll(predictions, references)}
