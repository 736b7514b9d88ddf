"""The multiclass Brier score: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.brier`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Multiclass Brier score, mean_i sum_k (p_ik - [y_i = k])^2, in [0, 2]. (evaluate's "brier_score" is
the binary score, from the probability of class 1; this one takes whole probability rows.)"""

_KWARGS_DESCRIPTION = """
Args:
    prediction_probabilities: (N, K) probability rows, each summing to 1.
    references: (N,) reference class ids.
Returns:
    brier: the Brier score, in [0, 2]; lower is better.
Examples:
    >>> brier = evaluate.load("path/to/brier")
    >>> brier.compute(prediction_probabilities=[[0.5, 0.5], [0.25, 0.75]], references=[0, 1])
    {'brier': 0.3125}
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
class Brier(evaluate.Metric):
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
            homepage="https://arxiv.org/abs/2406.09864",
            reference_urls=[
                "https://en.wikipedia.org/wiki/Brier_score",
                "https://huggingface.co/spaces/evaluate-metric/brier_score",
            ],
        )

    def _compute(self, prediction_probabilities, references):
        rows = _probability_rows(prediction_probabilities)
        errors = rows.copy()
        errors[np.arange(len(rows)), _references(references, rows)] -= 1.0
        return {"brier": float(np.mean(np.sum(errors**2, axis=1)))}
