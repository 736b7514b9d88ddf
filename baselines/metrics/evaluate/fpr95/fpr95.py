"""FPR at 95% TPR as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import fpr95
from baselines.metrics.evaluate_info import SCORES, metric_info

_DESCRIPTION = """False positive rate at 95% true positive rate, as TorchUncertainty's FPR95 (0.13): over the
thresholds at the distinct scores, from the highest down, the FPR at the first one whose TPR reaches 0.95."""

_KWARGS_DESCRIPTION = """
Args:
    scores: (N,) scores, higher for the positives.
    references: (N,) 0/1, 1 for the positives; both classes must occur.
Returns:
    fpr95: the false positive rate, in [0, 1]; lower is better.
"""

_CITATION = """\
@inproceedings{liang2018enhancing,
  title={Enhancing The Reliability of Out-of-distribution Image Detection in Neural Networks},
  author={Liang, Shiyu and Li, Yixuan and Srikant, R.},
  booktitle={International Conference on Learning Representations},
  year={2018}
}
"""


class FPR95(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, SCORES, _CITATION)

    def _compute(self, scores, references):
        return {"fpr95": fpr95(scores, references)}
