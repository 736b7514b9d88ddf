"""Area under the risk-coverage curve as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import aurc
from baselines.metrics.evaluate_info import PROBABILITIES, metric_info

_DESCRIPTION = """Area under the risk-coverage curve, as TorchUncertainty's AURC: samples ranked from most to least
certain, selective risk r_k = error rate of the k most certain, AURC = (1 / (N - 1)) sum_{k<N} (r_k + r_{k+1}) / 2.
Tied uncertainties share their mean error (the expectation over orderings of the ties)."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, K) probability rows, each summing to 1.
    references: (N,) class indices.
    uncertainties: optional (N,) uncertainty per row, a keyword of `compute` covering every row (default 1 - max
        probability).
Returns:
    aurc: the area under the risk-coverage curve, in [0, 1]; lower is better.
"""

_CITATION = """\
@inproceedings{geifman2017selective,
  title={Selective Classification for Deep Neural Networks},
  author={Geifman, Yonatan and El-Yaniv, Ran},
  booktitle={Advances in Neural Information Processing Systems},
  year={2017}
}
@inproceedings{geifman2019biasreduced,
  title={Bias-Reduced Uncertainty Estimation for Deep Neural Classifiers},
  author={Geifman, Yonatan and Uziel, Guy and El-Yaniv, Ran},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""


class AURC(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, PROBABILITIES, _CITATION)

    def _compute(self, predictions, references, uncertainties=None):
        return {"aurc": aurc(predictions, references, uncertainty=uncertainties)}
