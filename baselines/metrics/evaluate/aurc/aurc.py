"""AURC, the area under the risk-coverage curve: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.aurc`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Area under the risk-coverage curve, as TorchUncertainty's AURC: records ranked from most to least
certain (by `uncertainties`, ascending; default 1 - max_k p_ik), the selective risk r_k is the error rate of the k
most certain, and AURC = (1 / (N - 1)) sum_{k<N} (r_k + r_{k+1}) / 2 (NaN for N < 2). Tied uncertainties share their
mean error, the expectation over all orderings of the ties."""

_KWARGS_DESCRIPTION = """
Args:
    prediction_probabilities: (N, K) probability rows, each summing to 1.
    references: (N,) reference class ids.
    uncertainties: optional (N,) uncertainty per record, a keyword of `compute` covering every record (default
        1 - max probability).
Returns:
    aurc: the area under the risk-coverage curve, in [0, 1]; lower is better.
Examples:
    >>> aurc = evaluate.load("path/to/aurc")
    >>> aurc.compute(prediction_probabilities=[[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]], references=[0, 0, 1])
    {'aurc': 0.41666666666666663}
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


def _ranked_errors(rows: np.ndarray, references: np.ndarray, uncertainties) -> np.ndarray:
    """Errors from most to least certain; each group of tied uncertainties gets the group's mean error."""
    if uncertainties is None:
        uncertainties = 1.0 - rows.max(axis=1)
    uncertainties = np.asarray(uncertainties, dtype=np.float64)
    if uncertainties.shape != (len(rows),) or not np.isfinite(uncertainties).all():
        raise ValueError(f"uncertainties must be ({len(rows)},) finite numbers, got shape {uncertainties.shape}")
    errors = (rows.argmax(axis=1) != references).astype(np.float64)
    order = np.argsort(uncertainties, kind="stable")
    uncertainties, errors = uncertainties[order], errors[order]
    starts = np.flatnonzero(np.r_[True, uncertainties[1:] != uncertainties[:-1]])
    sizes = np.diff(np.r_[starts, len(errors)])
    return np.repeat(np.add.reduceat(errors, starts) / sizes, sizes)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AURC(evaluate.Metric):
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
            homepage="https://arxiv.org/abs/1705.08500",
            reference_urls=[
                "https://arxiv.org/abs/1705.08500",
                "https://torch-uncertainty.github.io/",
            ],
        )

    def _compute(self, prediction_probabilities, references, uncertainties=None):
        rows = _probability_rows(prediction_probabilities)
        errors = _ranked_errors(rows, _references(references, rows), uncertainties)
        if len(errors) < 2:
            return {"aurc": float("nan")}
        risks = np.cumsum(errors) / np.arange(1, len(errors) + 1)
        return {"aurc": float(np.mean((risks[1:] + risks[:-1]) / 2.0))}
