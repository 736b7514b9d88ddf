"""Negative log-likelihood as a local `evaluate` metric (loads offline)."""

import datasets
import evaluate

from baselines.metrics import nll

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
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return {"nll": nll(predictions, references)}
