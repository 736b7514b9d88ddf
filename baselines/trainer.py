"""`transformers.Trainer` on LUMA, streamed or not: a late-fusion two-head model whose forward returns the loss.

    from transformers import Trainer, TrainingArguments
    stream = Luma("clean", data_dir=...).as_streaming_dataset("train")
    trainer = Trainer(
        model=LumaTrainerModel(),
        args=TrainingArguments("out", max_steps=1000, remove_unused_columns=False, report_to=[]),
        train_dataset=stream,
        data_collator=LumaCollator(TextEmbedder()),
    )
    trainer.train()

`remove_unused_columns=False` keeps the raw LUMA fields for the collator; a streamed dataset needs `max_steps`.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import MODALITIES
from .losses import sampling_softmax_nll
from .models import LateFusion


class LumaTrainerModel(nn.Module):
    """`LateFusion` over `modalities`, trained with the sampling softmax loss; returns {"loss", "logits", "sigma"}."""

    def __init__(self, modalities=MODALITIES, num_classes: int = 42, text_dim: int = 384, loss_samples: int = 20):
        super().__init__()
        self.net = LateFusion(modalities, num_classes, text_dim)
        self.loss_samples = loss_samples

    def forward(self, labels: torch.Tensor | None = None, **batch) -> dict[str, torch.Tensor]:
        # the collator's other fields (is_ood, provenance flags) ride along and are ignored here
        logits, sigma = self.net({m: batch[m] for m in self.net.modalities})
        out = {"logits": logits, "sigma": sigma}
        if labels is not None:
            out = {"loss": sampling_softmax_nll(logits, sigma, labels, self.loss_samples), **out}
        return out
