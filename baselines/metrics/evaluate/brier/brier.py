"""Brier score as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import brier
from baselines.metrics.evaluate_info import PROBABILITIES, metric_info

_DESCRIPTION = """Multiclass Brier score, mean_i sum_k (p_ik - [y_i = k])^2, in [0, 2]."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, K) probability rows, each summing to 1.
    references: (N,) class indices.
Returns:
    brier: the Brier score.
"""

_CITATION = """\
@article{brier1950verification,
  title={Verification of Forecasts Expressed in Terms of Probability},
  author={Brier, Glenn W.},
  journal={Monthly Weather Review},
  volume={78},
  number={1},
  pages={1--3},
  year={1950}
}
"""


class Brier(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, PROBABILITIES, _CITATION)

    def _compute(self, predictions, references):
        return {"brier": brier(predictions, references)}
