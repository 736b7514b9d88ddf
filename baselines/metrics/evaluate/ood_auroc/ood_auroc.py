"""AUROC for detection (OOD, injected noise): a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.auroc`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Area under the ROC curve of a score for telling positives (e.g. OOD records) from negatives:
trapezoidal over the distinct scores, so a tied positive/negative pair counts 1/2, as sklearn's roc_auc_score and
evaluate's "roc_auc" (whose argument names this module takes)."""

_KWARGS_DESCRIPTION = """
Args:
    prediction_scores: (N,) scores, higher for the positives (e.g. an uncertainty, positives = OOD records).
    references: (N,) 0/1, 1 for the positives; both must occur.
Returns:
    auroc: the area under the ROC curve, in [0, 1]; 0.5 is chance.
Examples:
    >>> auroc = evaluate.load("path/to/ood_auroc")
    >>> auroc.compute(prediction_scores=[0.9, 0.2, 0.6, 0.4], references=[1, 0, 0, 1])
    {'auroc': 0.75}
"""

_CITATION = """\
@inproceedings{hendrycks2017baseline,
  title={A Baseline for Detecting Misclassified and Out-of-Distribution Examples in Neural Networks},
  author={Hendrycks, Dan and Gimpel, Kevin},
  booktitle={International Conference on Learning Representations},
  year={2017}
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
class OODAUROC(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"prediction_scores": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
            homepage="https://arxiv.org/abs/1610.02136",
            reference_urls=[
                "https://arxiv.org/abs/1610.02136",
                "https://huggingface.co/spaces/evaluate-metric/roc_auc",
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.roc_auc_score.html",
            ],
            format="numpy",
        )

    def _compute(self, prediction_scores, references):
        true_pos, false_pos = _curve(prediction_scores, references)
        fpr, tpr = np.r_[0.0, false_pos / false_pos[-1]], np.r_[0.0, true_pos / true_pos[-1]]
        return {"auroc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))}
