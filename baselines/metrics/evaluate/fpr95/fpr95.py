"""FPR95, the false positive rate at 95% true positive rate: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.fpr95`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """False positive rate at 95% true positive rate, as TorchUncertainty's FPR95 (0.13): over the
thresholds at the distinct scores, from the highest down, the FPR at the first one whose TPR reaches 0.95."""

_KWARGS_DESCRIPTION = """
Args:
    prediction_scores: (N,) scores, higher for the positives (e.g. an uncertainty, positives = OOD records).
    references: (N,) 0/1, 1 for the positives; both must occur.
Returns:
    fpr95: the false positive rate, in [0, 1]; lower is better.
Examples:
    >>> fpr95 = evaluate.load("path/to/fpr95")
    >>> fpr95.compute(prediction_scores=[0.9, 0.2, 0.6, 0.4], references=[1, 0, 0, 1])
    {'fpr95': 0.5}
"""

_CITATION = """\
@inproceedings{liang2018enhancing,
  title={Enhancing The Reliability of Out-of-distribution Image Detection in Neural Networks},
  author={Liang, Shiyu and Li, Yixuan and Srikant, R.},
  booktitle={International Conference on Learning Representations},
  year={2018}
}
"""


def _curve(prediction_scores, references) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive counts when thresholding at each distinct score, from the highest down."""
    scores, positives = np.asarray(prediction_scores, dtype=np.float64), np.asarray(references)
    if scores.ndim != 1 or len(scores) == 0 or not np.isfinite(scores).all():
        raise ValueError(f"prediction_scores must be (N,) finite numbers, got shape {scores.shape}")
    if positives.shape != scores.shape or not np.isin(positives, (0, 1)).all():
        raise ValueError(f"references must be ({len(scores)},) 0/1 values")
    if positives.all() or not positives.any():
        raise ValueError("references must contain both positives (1) and negatives (0)")
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order].astype(np.int64)
    # Tied scores share one threshold: count them all at the last position of their group.
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    true_pos = np.cumsum(positives)[last]
    return true_pos, last + 1 - true_pos


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FPR95(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"prediction_scores": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
            homepage="https://arxiv.org/abs/1706.02690",
            reference_urls=["https://arxiv.org/abs/1706.02690", "https://torch-uncertainty.github.io/"],
            format="numpy",
        )

    def _compute(self, prediction_scores, references):
        true_pos, false_pos = _curve(prediction_scores, references)
        cutoff = int(np.argmax(true_pos / true_pos[-1] >= 0.95))
        return {"fpr95": float(false_pos[cutoff] / false_pos[-1])}
