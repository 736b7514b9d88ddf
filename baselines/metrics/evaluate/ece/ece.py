"""Expected calibration error as a local `evaluate` metric (loads offline)."""

import evaluate

from baselines.metrics import ece
from baselines.metrics.evaluate_info import PROBABILITIES, metric_info

_DESCRIPTION = """Top-label expected calibration error, ECE = sum_b (n_b / N) |acc_b - conf_b|, over equal-width
confidence bins (b / B, (b + 1) / B]. Equal to torchmetrics' MulticlassCalibrationError(norm="l1") except for
confidences lying exactly on a bin edge."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N, K) probability rows, each summing to 1.
    references: (N,) class indices.
    num_bins: number of equal-width bins (default 15).
Returns:
    ece: the expected calibration error, in [0, 1].
"""

_CITATION = """\
@inproceedings{naeini2015obtaining,
  title={Obtaining Well Calibrated Probabilities Using Bayesian Binning},
  author={Naeini, Mahdi Pakdaman and Cooper, Gregory F. and Hauskrecht, Milos},
  booktitle={AAAI Conference on Artificial Intelligence},
  year={2015}
}
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={International Conference on Machine Learning},
  year={2017}
}
"""


class ECE(evaluate.Metric):
    def _info(self):
        return metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, PROBABILITIES, _CITATION)

    def _compute(self, predictions, references, num_bins=15):
        return {"ece": ece(predictions, references, num_bins=num_bins)}
