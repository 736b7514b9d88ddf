"""The LUMA baseline networks: one small classifier per modality, fused late.

Each modality network ends in two heads (Valdenegro-Toro & Mori): the logits mu and a positive aleatoric scale sigma
(softplus), one per class, trained with `losses.sampling_softmax_nll`. Dropout (p = 0.3) sits in `nn.Dropout` modules,
so that MC Dropout can switch exactly those back on at test time. Convolutions are followed by max pooling, then the
ReLU: the same function as ReLU then pooling (ReLU is monotonic), on a quarter of the values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.data import MODALITIES, TEXT_DIM
from baselines.opinions import fuse_opinions
from luma_builders.classes import NUM_ID_CLASSES

DROPOUT = 0.3
HIDDEN = 128


class _TwoHeadNet(nn.Module):
    """`body` (input -> hidden features) followed by a logits head and, unless `sigma_head` is false, a sigma head."""

    def __init__(self, body: nn.Module, width: int, num_classes: int, sigma_head: bool):
        super().__init__()
        self.body = body
        self.logits = nn.Linear(width, num_classes)
        self.sigma = nn.Linear(width, num_classes) if sigma_head else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self.body(x)
        sigma = F.softplus(self.sigma(hidden)) if self.sigma is not None else None
        return self.logits(hidden), sigma


def _convolutional_body(convolutions, pooling: list[nn.Module], flat_width: int, dropout: float) -> nn.Sequential:
    """3x3 `convolutions` (channels in, channels out, stride), each followed by 2x2 max pooling and the ReLU; then
    `pooling`, dropout, and a linear layer from `flat_width` inputs to HIDDEN with its ReLU and dropout."""
    layers = []
    for channels_in, channels_out, stride in convolutions:
        layers += [nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1), nn.MaxPool2d(2), nn.ReLU()]
    head = [nn.Dropout(dropout), nn.Flatten(), nn.Linear(flat_width, HIDDEN), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, *pooling, *head)


class ImageNet(_TwoHeadNet):
    """(N, 3, 32, 32) -> two 3x3 convolutions (16, 32 channels), each with max pooling, dropout, a linear layer.

    Half the channels of the paper's (32, 64): a third of the cost, which the default benchmark's 180 trainings need to
    fit 15 minutes on 2 CPU cores, for 0.76-0.79 test accuracy on the mini source against 0.78."""

    def __init__(self, num_classes: int = NUM_ID_CLASSES, dropout: float = DROPOUT, sigma_head: bool = True):
        body = _convolutional_body(((3, 16, 1), (16, 32, 1)), [], 32 * 8 * 8, dropout)
        super().__init__(body, HIDDEN, num_classes, sigma_head)


class AudioNet(_TwoHeadNet):
    """(N, 1, 128, 128) log-mel spectrograms -> 2x2 average pooling, three 3x3 convolutions (16, 32, 64 channels) with
    max pooling, then average pooling to a 4x4 grid, dropout, a linear layer. The input pooling and the first
    convolution's stride 2 each cut the cost on a CPU by four (a spoken word's spectrogram has little detail at the
    finest scales): on the mini source a third of the time of the unpooled network, at no loss of accuracy."""

    def __init__(self, num_classes: int = NUM_ID_CLASSES, dropout: float = DROPOUT, sigma_head: bool = True):
        convolutions = ((1, 16, 2), (16, 32, 1), (32, 64, 1))
        body = _convolutional_body(convolutions, [nn.AdaptiveAvgPool2d(4)], 64 * 4 * 4, dropout)
        super().__init__(nn.Sequential(nn.AvgPool2d(2), body), HIDDEN, num_classes, sigma_head)


class TextNet(_TwoHeadNet):
    """(N, text_dim) mean-pooled token embeddings -> MLP 512-256 with dropout."""

    def __init__(
        self,
        num_classes: int = NUM_ID_CLASSES,
        text_dim: int = TEXT_DIM,
        dropout: float = DROPOUT,
        sigma_head: bool = True,
    ):
        body = nn.Sequential(
            nn.Linear(text_dim, 512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        super().__init__(body, 256, num_classes, sigma_head)


def modality_net(
    modality: str, num_classes: int = NUM_ID_CLASSES, text_dim: int = TEXT_DIM, sigma_head: bool = True
) -> nn.Module:
    if modality == "image":
        return ImageNet(num_classes, sigma_head=sigma_head)
    if modality == "audio":
        return AudioNet(num_classes, sigma_head=sigma_head)
    if modality == "text":
        return TextNet(num_classes, text_dim, sigma_head=sigma_head)
    raise ValueError(f"unknown modality {modality!r}; choose from {', '.join(MODALITIES)}")


def _check_modalities(modalities) -> tuple[str, ...]:
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names from {MODALITIES}, got {modalities}")
    return modalities


class LateFusion(nn.Module):
    """One two-head network per modality; the fused logits and sigmas are their plain averages."""

    def __init__(self, modalities=MODALITIES, num_classes: int = NUM_ID_CLASSES, text_dim: int = TEXT_DIM):
        super().__init__()
        self.modalities = _check_modalities(modalities)
        self.nets = nn.ModuleDict({m: modality_net(m, num_classes, text_dim) for m in self.modalities})

    def forward_modalities(self, batch: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {m: net(batch[m]) for m, net in self.nets.items()}

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = list(self.forward_modalities(batch).values())
        logits = torch.stack([mu for mu, _ in outputs]).mean(dim=0)
        sigma = torch.stack([sigma for _, sigma in outputs]).mean(dim=0)
        return logits, sigma


def fuse_evidence(evidences: list[torch.Tensor]) -> torch.Tensor:
    """RCML's average belief fusion: a running average, e <- (e + e_v) / 2, over the views in the given order.

    The order matters: the running average halves the weight of everything fused so far at each step, so with views
    v1..vV the last view weighs 1/2, the one before 1/4, ..., and the first two 1/2^(V-1) each. With LUMA's three
    modalities in the default order (image, audio, text) the fused evidence is image/4 + audio/4 + text/2. This is the
    reference implementation's fusion, kept as is; reorder `modalities` to change which view dominates.
    """
    fused = evidences[0]
    for evidence in evidences[1:]:
        fused = (fused + evidence) / 2
    return fused


class EvidentialFusion(nn.Module):
    """RCML: per-modality evidence networks (the same encoders, without the sigma head; evidence = softplus(logits)),
    fused with `fuse_evidence` in the order of `modalities`. Outputs Dirichlet parameters alpha = evidence + 1: the
    fused one and one per modality."""

    def __init__(self, modalities=MODALITIES, num_classes: int = NUM_ID_CLASSES, text_dim: int = TEXT_DIM):
        super().__init__()
        self.modalities = _check_modalities(modalities)
        self.nets = nn.ModuleDict(
            {m: modality_net(m, num_classes, text_dim, sigma_head=False) for m in self.modalities}
        )

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        evidences = {m: F.softplus(net(batch[m])[0]) for m, net in self.nets.items()}
        return self.fuse(list(evidences.values())), {m: evidence + 1 for m, evidence in evidences.items()}

    def fuse(self, evidences: list[torch.Tensor]) -> torch.Tensor:
        """The fused alpha of the views' evidences."""
        return fuse_evidence(evidences) + 1


class DempsterShaferFusion(EvidentialFusion):
    """TMC (Han et al., 2021): `EvidentialFusion`'s evidence networks, the views' Dirichlets fused by
    `opinions.fuse_opinions` (Dempster-Shafer; the order of `modalities` does not matter)."""

    def fuse(self, evidences: list[torch.Tensor]) -> torch.Tensor:
        return fuse_opinions([evidence + 1 for evidence in evidences])


class EvidentialNet(nn.Module):
    """EDL (Sensoy et al., 2018): the modality networks without the sigma head, their logits averaged (one modality:
    the plain EDL classifier; several: trained jointly), evidence = softplus(logits); outputs alpha = evidence + 1."""

    def __init__(self, modalities=MODALITIES, num_classes: int = NUM_ID_CLASSES, text_dim: int = TEXT_DIM):
        super().__init__()
        self.modalities = _check_modalities(modalities)
        self.nets = nn.ModuleDict(
            {m: modality_net(m, num_classes, text_dim, sigma_head=False) for m in self.modalities}
        )

    def forward(self, batch: dict) -> torch.Tensor:
        logits = torch.stack([net(batch[m])[0] for m, net in self.nets.items()]).mean(dim=0)
        return F.softplus(logits) + 1


MODELS = {
    "mcd": LateFusion,
    "de": LateFusion,
    "rcml": EvidentialFusion,
    "tmc": DempsterShaferFusion,
    "edl": EvidentialNet,
}


def build_model(
    method: str, modalities: tuple[str, ...] = MODALITIES, num_classes: int = NUM_ID_CLASSES, text_dim: int = TEXT_DIM
):
    """The network of `method`: `LateFusion` for mcd and de, `EvidentialFusion` for rcml, `DempsterShaferFusion` for
    tmc, `EvidentialNet` for edl."""
    if method not in MODELS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[method](modalities, num_classes, text_dim)
