"""Negative log-likelihood: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.nll`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Negative log-likelihood of the reference classes, -mean_i log p_{i, y_i}, in nats (natural log). Not
clipped: a zero probability on the reference class gives inf, as it should."""

_KWARGS_DESCRIPTION = """
Args:
    prediction_probabilities: (N, K) probability rows, each summing to 1.
    references: (N,) reference class ids.
Returns:
    nll: the mean negative log-likelihood, in nats; lower is better.
Examples:
    >>> nll = evaluate.load("path/to/nll")
    >>> nll.compute(prediction_probabilities=[[0.5, 0.5], [0.25, 0.75]], references=[0, 1])
    {'nll': 0.4904146265058631}
"""

_CITATION = """\
@inproceedings{quinonero2006evaluating,
  title={Evaluating Predictive Uncertainty Challenge},
  author={Qui{\\~n}onero-Candela, Joaquin and Rasmussen, Carl Edward and Sinz, Fabian and Bousquet, Olivier and
    Sch{\\"o}lkopf, Bernhard},
  booktitle={Machine Learning Challenges Workshop (MLCW 2005)},
  series={Lecture Notes in Computer Science},
  volume={3944},
  pages={1--27},
  publisher={Springer},
  year={2006}
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
class NLL(evaluate.Metric):
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
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html",
            ],
        )

    def _compute(self, prediction_probabilities, references):
        rows = _probability_rows(prediction_probabilities)
        references = _references(references, rows)
        with np.errstate(divide="ignore"):
            return {"nll": float(-np.mean(np.log(rows[np.arange(len(rows)), references])))}
