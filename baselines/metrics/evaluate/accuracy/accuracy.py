"""Top-1 accuracy over probability rows as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import accuracy
from baselines.metrics.evaluate_info import PROBABILITIES, metric_info

_DESCRIPTION = """Top-1 accuracy, mean_i [argmax_k p_ik = y_i], from probability rows (unlike the Hub's "accuracy",
which takes predicted labels and needs the network to load)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, K) probability rows, each summing to 1.
    references: (N,) class indices.
Returns:
    accuracy: the fraction of rows whose most probable class is the reference.
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, PROBABILITIES)

    def _compute(self, predictions, references):
        return {"accuracy": accuracy(predictions, references)}
