"""AUPR for detection (OOD, injected noise) as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import aupr
from baselines.metrics.evaluate_info import SCORES, metric_info

_DESCRIPTION = """Area under the precision-recall curve of a score (higher = more likely positive) as average
precision, AP = sum_n (R_n - R_{n-1}) P_n over the distinct thresholds, as sklearn's average_precision_score."""

_KWARGS_DESCRIPTION = """
Args:
    scores: (N,) scores, higher for the positives.
    references: (N,) 0/1, 1 for the positives; both classes must occur.
Returns:
    aupr: the average precision, in [0, 1].
"""

_CITATION = """\
@inproceedings{hendrycks2017baseline,
  title={A Baseline for Detecting Misclassified and Out-of-Distribution Examples in Neural Networks},
  author={Hendrycks, Dan and Gimpel, Kevin},
  booktitle={International Conference on Learning Representations},
  year={2017}
}
"""


class OODAUPR(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, SCORES, _CITATION)

    def _compute(self, scores, references):
        return {"aupr": aupr(scores, references)}
