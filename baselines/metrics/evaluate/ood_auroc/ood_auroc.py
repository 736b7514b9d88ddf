"""AUROC for detection (OOD, injected noise) as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import auroc
from baselines.metrics.evaluate_info import SCORES, metric_info

_DESCRIPTION = """Area under the ROC curve of a score (higher = more likely positive, e.g. an uncertainty) for
telling positives (e.g. OOD records) from negatives; tied scores count 1/2, as sklearn's roc_auc_score."""

_KWARGS_DESCRIPTION = """
Args:
    scores: (N,) scores, higher for the positives.
    references: (N,) 0/1, 1 for the positives; both classes must occur.
Returns:
    auroc: the area under the ROC curve, in [0, 1].
"""

_CITATION = """\
@inproceedings{hendrycks2017baseline,
  title={A Baseline for Detecting Misclassified and Out-of-Distribution Examples in Neural Networks},
  author={Hendrycks, Dan and Gimpel, Kevin},
  booktitle={International Conference on Learning Representations},
  year={2017}
}
"""


class OODAUROC(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, SCORES, _CITATION)

    def _compute(self, scores, references):
        return {"auroc": auroc(scores, references)}
