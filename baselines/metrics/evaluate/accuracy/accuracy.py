"""Top-1 accuracy: a standalone `evaluate` module.

It needs numpy, not the LUMA project, so it loads from this folder, a copy of it or a Hub Space. Its arithmetic repeats
`baselines.metrics.accuracy`, the one implementation the project's own code uses: the tests load a copy of this folder
and check that the two agree on random data, so the copy cannot drift.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Top-1 accuracy, the fraction of records whose predicted class is the reference class. As evaluate's
"accuracy", `predictions` are class ids; the config "probabilities" takes probability rows instead (argument
`prediction_probabilities`), scoring the most probable class of each row, as LUMA's tables do."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: (N,) predicted class ids (default config).
    prediction_probabilities: (N, K) probability rows, each summing to 1 (config "probabilities").
    references: (N,) reference class ids.
Returns:
    accuracy: the fraction of records predicted right, in [0, 1].
Examples:
    >>> accuracy = evaluate.load("path/to/accuracy")
    >>> accuracy.compute(predictions=[0, 2, 1], references=[0, 1, 1])
    {'accuracy': 0.6666666666666666}
    >>> accuracy = evaluate.load("path/to/accuracy", "probabilities")
    >>> accuracy.compute(prediction_probabilities=[[0.9, 0.1], [0.3, 0.7]], references=[0, 0])
    {'accuracy': 0.5}
"""

_CITATION = """\
@inproceedings{bezirganyan2025luma,
  title={LUMA: A Benchmark Dataset for Learning from Uncertain and Multimodal Data},
  author={Bezirganyan, Grigor and Sellami, Sana and Berti-{\\'E}quille, Laure and Fournier, S{\\'e}bastien},
  booktitle={SIGIR},
  year={2025},
  eprint={2406.09864},
  archivePrefix={arXiv}
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


def _class_ids(values, count: int, name: str, num_classes: int | None = None) -> np.ndarray:
    ids = np.asarray(values)
    if ids.shape != (count,) or ids.dtype.kind not in "iu":
        raise ValueError(f"{name} must be ({count},) integer class ids, got shape {ids.shape}")
    if num_classes is not None and count and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes})")
    return ids


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        predicted = (
            {"prediction_probabilities": datasets.List(datasets.Value("float64"))}
            if self.config_name == "probabilities"
            else {"predictions": datasets.Value("int64")}
        )
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({**predicted, "references": datasets.Value("int64")}),
            homepage="https://arxiv.org/abs/2406.09864",
            reference_urls=[
                "https://huggingface.co/spaces/evaluate-metric/accuracy",
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html",
            ],
        )

    def _compute(self, references, predictions=None, prediction_probabilities=None):
        if prediction_probabilities is not None:
            rows = _probability_rows(prediction_probabilities)
            references = _class_ids(references, len(rows), "references", rows.shape[1])
            predictions = rows.argmax(axis=1)
        else:
            predictions = _class_ids(predictions, len(predictions), "predictions")
            references = _class_ids(references, len(predictions), "references")
        if len(predictions) == 0:
            raise ValueError("no predictions to score")
        return {"accuracy": float(np.mean(predictions == references))}
