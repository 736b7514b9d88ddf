"""The expected calibration error: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.ece`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Top-label expected calibration error, ECE = sum_b (n_b / N) |acc_b - conf_b|, over `num_bins`
equal-width confidence bins (b / B, (b + 1) / B] of the top-label confidence max_k p_ik. Equal to torchmetrics'
MulticlassCalibrationError(norm="l1") except for confidences lying exactly on a bin edge."""

_KWARGS_DESCRIPTION = """
Args:
    prediction_probabilities: (N, K) probability rows, each summing to 1.
    references: (N,) reference class ids.
    num_bins: the number of equal-width bins (default 15).
Returns:
    ece: the expected calibration error, in [0, 1]; lower is better.
Examples:
    >>> ece = evaluate.load("path/to/ece")
    >>> ece.compute(prediction_probabilities=[[0.9, 0.1], [0.2, 0.8]], references=[0, 0], num_bins=10)
    {'ece': 0.45}
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

_SUM_TOLERANCE = 1e-2  # rows rounded to float32 or bfloat16 sum to 1 far closer; logits miss by far more


def _probability_rows(values) -> np.ndarray:
    rows = np.asarray(values)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] < 2 or rows.dtype.kind not in "iuf":
        raise ValueError(f"prediction_probabilities must be (N, K) numbers with K >= 2, got shape {rows.shape}")
    rows = rows.astype(np.float64)
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise ValueError("prediction_probabilities must be finite and non-negative (probabilities, not logits)")
    if not np.allclose(rows.sum(axis=1), 1.0, rtol=0.0, atol=_SUM_TOLERANCE):
        raise ValueError("prediction_probabilities rows must sum to 1")
    return rows


def _references(values, rows: np.ndarray) -> np.ndarray:
    ids = np.asarray(values)
    if ids.shape != (len(rows),) or ids.dtype.kind not in "iu":
        raise ValueError(f"references must be ({len(rows)},) integer class ids, got shape {ids.shape}")
    if ids.min() < 0 or ids.max() >= rows.shape[1]:
        raise ValueError(f"references must lie in [0, {rows.shape[1]})")
    return ids


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ECE(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "prediction_probabilities": datasets.List(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }
            ),
            homepage="https://arxiv.org/abs/1706.04599",
            reference_urls=[
                "https://arxiv.org/abs/1706.04599",
                "https://lightning.ai/docs/torchmetrics/stable/classification/calibration_error.html",
            ],
        )

    def _compute(self, prediction_probabilities, references, num_bins=15):
        if not isinstance(num_bins, int | np.integer) or num_bins < 1:
            raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
        rows = _probability_rows(prediction_probabilities)
        correct = (rows.argmax(axis=1) == _references(references, rows)).astype(np.float64)
        confidence = rows.max(axis=1)
        edges = np.linspace(0.0, 1.0, num_bins + 1)
        # A confidence on an edge belongs to the bin that edge closes; 1 + rounding stays in the last bin.
        index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
        gaps = np.bincount(index, weights=correct, minlength=num_bins) - np.bincount(
            index, weights=confidence, minlength=num_bins
        )  # n_b (acc_b - conf_b) per bin
        return {"ece": float(np.sum(np.abs(gaps)) / len(rows))}
