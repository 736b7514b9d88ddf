"""MC Dropout's late-fusion network as a transformers model: train it with `transformers.Trainer` or a plain PyTorch
loop, save, load and share it as any `PreTrainedModel`, and score its predictions with LUMA's `evaluate` modules.

    luma = Luma("clean", data_dir=...)
    luma.download_and_prepare()
    model = LumaMCDropoutModel(LumaMCDropoutConfig.from_features(luma.info.features))
    args = TrainingArguments("out", max_steps=1000, remove_unused_columns=False, label_names=["labels", "is_ood"])
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=luma.as_streaming_dataset("train"),
        eval_dataset=concatenate_datasets([luma.as_dataset("test"), luma.as_dataset("ood")]),
        data_collator=LumaCollator(TextEmbedder()),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    trainer.evaluate()  # eval_accuracy, eval_nll, eval_brier, eval_ece, eval_aurc, eval_ood_auroc_epistemic, ...
    model.save_pretrained("luma-mcd")  # or model.push_to_hub("user/luma-mcd")

The model has one output per in-distribution class of the dataset's `label` ClassLabel (42 of its 50 names: the OOD
classes are never training targets). `remove_unused_columns=False` keeps the raw LUMA fields for the collator; a
streamed dataset needs `max_steps`; `label_names=["labels", "is_ood"]` hands `compute_metrics` the OOD flags, so that
it scores classification on the in-distribution records and OOD detection on all of them.

Without transformers' loop, the same model in plain PyTorch:

    train = luma.as_dataset("train")
    loader = DataLoader(train, batch_size=64, shuffle=True, collate_fn=LumaCollator(TextEmbedder()), num_workers=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for batch in loader:
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    output = model(**batch)  # output.probabilities (N, 42), output.aleatoric / epistemic / total (N,)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import evaluate
import numpy as np
import torch
from transformers import AutoConfig, AutoModel, EvalPrediction, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from baselines.data import MODALITIES, TEXT_DIM
from baselines.losses import LOSS_SAMPLES
from baselines.methods import MC_PASSES, MCDropout, predictive
from baselines.metrics import evaluate_module_path
from baselines.models import build_model
from baselines.train import TrainConfig
from luma_builders.classes import CLASS_NAMES, OOD_CLASSES
from luma_builders.rng import generator
from luma_builders.schema import FEATURES

MODEL_TYPE = "luma-mcd"
UNCERTAINTIES = ("aleatoric", "epistemic", "total")  # in nats, higher = less certain
# What an eval-mode forward returns besides the loss, in this order: Trainer.predict's `predictions` tuple.
PREDICTION_FIELDS = ("probabilities", *UNCERTAINTIES)


def in_distribution_names(class_label) -> list[str]:
    """The classes a LUMA model predicts: the names of a `label` ClassLabel without the OOD classes.

    LUMA's ClassLabel has 50 names, but the 8 OOD classes (ids 42-49) occur only in the ood split, never as training
    targets, so a model has one output per in-distribution class (42); their ids come first, so output k is class k.
    """
    ood = {CLASS_NAMES[i] for i in OOD_CLASSES}
    names = list(class_label.names)
    known = [name for name in names if name not in ood]
    if names[: len(known)] != known:
        raise ValueError(f"the label ClassLabel must list the in-distribution classes before the OOD ones: {names}")
    return known


class LumaMCDropoutConfig(PretrainedConfig):
    """The configuration of `LumaMCDropoutModel`: the modalities it reads, the text embedding width, the draws of the
    sampling softmax loss (`loss_samples`), MC Dropout's test-time passes (`mc_passes`) and the seed of its
    prediction draws. The classes are `id2label` (`num_labels` outputs): by default LUMA's 42 in-distribution
    classes, as `from_features` takes them from a built dataset's `label` ClassLabel."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        modalities=MODALITIES,
        text_dim: int = TEXT_DIM,
        loss_samples: int = LOSS_SAMPLES,
        mc_passes: int = MC_PASSES,
        seed: int = 0,
        id2label: dict | None = None,
        **kwargs,
    ):
        self.modalities = list(modalities)
        self.text_dim = text_dim
        self.loss_samples = loss_samples
        self.mc_passes = mc_passes
        self.seed = seed
        if id2label is None and kwargs.get("num_labels") is None:
            id2label = dict(enumerate(in_distribution_names(FEATURES["label"])))
        super().__init__(id2label=id2label, **kwargs)
        self.label2id = {name: i for i, name in self.id2label.items()}

    @classmethod
    def from_features(cls, features, **kwargs) -> LumaMCDropoutConfig:
        """The configuration for a built LUMA dataset: its `features["label"]` ClassLabel names the outputs."""
        return cls(id2label=dict(enumerate(in_distribution_names(features["label"]))), **kwargs)


@dataclass
class LumaMCDropoutOutput(ModelOutput):
    """In training mode: `loss` (given labels), `logits` and `sigma` (N, K) of one pass with dropout on. In eval
    mode: `loss` (given labels; dropout off; over the in-distribution records) and MC Dropout's prediction:
    `probabilities` (N, K), the mean over passes of the sigma head's sampled softmax, and the `aleatoric`,
    `epistemic` and `total` entropies (N,)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    sigma: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    aleatoric: torch.Tensor | None = None
    epistemic: torch.Tensor | None = None
    total: torch.Tensor | None = None


class LumaMCDropoutModel(PreTrainedModel):
    """An `MCDropout` method's late-fusion network and loss as a `PreTrainedModel`.

    The network is `method.model` and the loss `method.objective`, the ones `baselines.train.train` fits in the
    benchmark, and eval-mode predictions are `method.predict`'s passes turned into probabilities and uncertainties
    by `methods.predictive`, as in the benchmark: only the loop is the Trainer's (or yours). Inputs are `LumaCollator`
    batches.
    """

    config_class = LumaMCDropoutConfig
    base_model_prefix = "net"

    def __init__(self, config: LumaMCDropoutConfig):
        super().__init__(config)
        self.method = MCDropout(
            config.modalities,
            TrainConfig(seed=config.seed),
            num_classes=config.num_labels,
            text_dim=config.text_dim,
            loss_samples=config.loss_samples,
            passes=config.mc_passes,
        )
        net = build_model(MCDropout.method, config.modalities, config.num_labels, config.text_dim)
        self.net = self.method.model = net
        self.post_init()

    def _init_weights(self, module) -> None:
        # PyTorch's own initialisation, as the benchmark's networks have (not transformers' normal(0, 0.02))
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()

    def forward(self, labels: torch.Tensor | None = None, **batch) -> LumaMCDropoutOutput:
        # the collator's other fields (is_ood, provenance flags) ride along and are ignored by the network
        if self.training:
            logits, sigma = self.net(batch)
            loss = None if labels is None else self.method.objective((logits, sigma), labels, None)
            return LumaMCDropoutOutput(loss=loss, logits=logits, sigma=sigma)
        loss = None if labels is None else self._in_distribution_loss(labels, batch)
        return LumaMCDropoutOutput(loss=loss, **self.predict(batch))

    def _in_distribution_loss(self, labels: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # OOD records (an eval set with the ood split) have no target among the outputs: the loss leaves them out,
        # and is NaN for a batch of OOD records only, which the Trainer's eval_loss skips (logging_nan_inf_filter)
        known = ~batch["is_ood"] if "is_ood" in batch else torch.ones_like(labels, dtype=torch.bool)
        if not known.any():
            return torch.full((), torch.nan, device=labels.device)
        inputs = {modality: batch[modality][known] for modality in self.method.modalities}
        return self.method.loss(self.net, {**inputs, "label": labels[known]}, None)

    def predict(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MC Dropout's prediction of a batch, as the benchmark makes it: {"probabilities": (N, K), "aleatoric",
        "epistemic", "total": (N,)}, on the model's device. Repeatable: the passes and the softmax draws are seeded
        by `config.seed`."""
        self.method.config.device = str(self.device)  # predict where the Trainer (or the user) put the model
        prediction = self.method.predict({m: batch[m] for m in self.method.modalities})
        probabilities, measures = predictive(prediction, generator(self.config.seed, MODEL_TYPE, "softmax samples"))
        values = {"probabilities": probabilities, **{name: measures[name] for name in UNCERTAINTIES}}
        return {name: torch.as_tensor(value, dtype=torch.float32, device=self.device) for name, value in values.items()}


AutoConfig.register(MODEL_TYPE, LumaMCDropoutConfig)
AutoModel.register(LumaMCDropoutConfig, LumaMCDropoutModel)


@functools.cache
def _metric(name: str) -> evaluate.EvaluationModule:
    return evaluate.load(evaluate_module_path(name))


def _references(label_ids, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, is_ood) from an EvalPrediction's label_ids: the labels alone, or (labels, is_ood)."""
    labels, is_ood = label_ids if isinstance(label_ids, tuple | list) else (label_ids, None)
    labels = np.asarray(labels)
    is_ood = np.zeros(len(labels), dtype=bool) if is_ood is None else np.asarray(is_ood, dtype=bool)
    outside = ~is_ood & ((labels < 0) | (labels >= num_classes))
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(
            f"record {row}: label {labels[row]} is not one of the model's {num_classes} classes; for OOD records "
            "pass TrainingArguments(label_names=['labels', 'is_ood']) so that compute_metrics knows them"
        )
    return labels, is_ood


def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`Trainer`'s compute_metrics for `LumaMCDropoutModel`, on LUMA's `evaluate` modules: accuracy, NLL, Brier,
    ECE and AURC (1 - max probability, and each uncertainty) over the in-distribution records, and, when the labels
    carry `is_ood` (`label_names=["labels", "is_ood"]`) and both kinds of record occur, each uncertainty's OOD
    AUROC (`ood_auroc_<name>`)."""
    probabilities, *uncertainties = eval_prediction.predictions
    labels, is_ood = _references(eval_prediction.label_ids, probabilities.shape[1])
    known = ~is_ood
    rows = {"prediction_probabilities": probabilities[known], "references": labels[known]}
    scores = dict(zip(UNCERTAINTIES, uncertainties, strict=True))
    results = _metric("accuracy").compute(
        predictions=rows["prediction_probabilities"].argmax(axis=1), references=rows["references"]
    )
    results.update({name: _metric(name).compute(**rows)[name] for name in ("nll", "brier", "ece", "aurc")})
    for name, values in scores.items():
        results[f"aurc_{name}"] = _metric("aurc").compute(**rows, uncertainties=values[known])["aurc"]
        if is_ood.any() and known.any():
            ood = {"prediction_scores": values, "references": is_ood.astype(int)}
            results[f"ood_auroc_{name}"] = _metric("ood_auroc").compute(**ood)["auroc"]
    return results
