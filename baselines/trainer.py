"""`transformers.Trainer` on LUMA, streamed or not: MC Dropout's late-fusion network as a model whose forward returns
its loss.

    from transformers import Trainer, TrainingArguments
    stream = Luma("clean", data_dir=...).as_streaming_dataset("train")
    model = LumaTrainerModel()
    trainer = Trainer(
        model=model,
        args=TrainingArguments("out", max_steps=1000, remove_unused_columns=False, report_to=[]),
        train_dataset=stream,
        data_collator=LumaCollator(TextEmbedder()),
    )
    trainer.train()
    prediction = model.method.predict(encode_records(Luma("clean", ...).as_dataset("test"), TextEmbedder()))

`remove_unused_columns=False` keeps the raw LUMA fields for the collator; a streamed dataset needs `max_steps`.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.data import MODALITIES, TEXT_DIM
from baselines.losses import LOSS_SAMPLES
from baselines.methods import MCDropout
from baselines.models import build_model
from luma_builders.classes import NUM_ID_CLASSES


class LumaTrainerModel(nn.Module):
    """An `MCDropout` method's network and loss for `transformers.Trainer`: forward returns {"loss" (given labels),
    "logits", "sigma"}.

    The network is `method.model` and the loss `method.objective`, the ones `baselines.train.train` fits in the
    benchmark; only the loop is the Trainer's. So the trained model predicts as the benchmark's MC Dropout does:
    `model.method.predict(encoded_records)`.
    """

    def __init__(
        self,
        modalities=MODALITIES,
        num_classes: int = NUM_ID_CLASSES,
        text_dim: int = TEXT_DIM,
        loss_samples: int = LOSS_SAMPLES,
    ):
        super().__init__()
        self.method = MCDropout(modalities, num_classes=num_classes, text_dim=text_dim, loss_samples=loss_samples)
        self.net = self.method.model = build_model(self.method.method, self.method.modalities, num_classes, text_dim)

    def forward(self, labels: torch.Tensor | None = None, **batch) -> dict[str, torch.Tensor]:
        # the collator's other fields (is_ood, provenance flags) ride along and are ignored by the network
        logits, sigma = self.net(batch)
        out = {"logits": logits, "sigma": sigma}
        if labels is not None:
            out = {"loss": self.method.objective((logits, sigma), labels, None), **out}
        return out
