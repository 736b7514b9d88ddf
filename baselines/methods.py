"""The three uncertainty methods of the LUMA paper and two evidential ones, on the shared networks (`models`) and
training loop (`train`).

- `MCDropout`: one late-fusion model; at test time its dropout stays on and T passes are kept.
- `DeepEnsemble`: M late-fusion models, each initialised and trained with its own seed; dropout off at test time.
- `RCML`: per-modality evidence networks fused by RCML's running average of evidences, trained with RCML's loss.
- `TMC`: the same evidence networks fused by Dempster-Shafer's rule (Han et al., 2021), trained with TMC's loss.
- `EDL`: one Dirichlet output (Sensoy et al., 2018), the modalities' logits averaged, trained with the EDL loss.

`predict` returns a `Prediction` holding raw outputs only: mu and sigma per pass or member (T, N, K) for MCD and DE,
the Dirichlet parameters for RCML, TMC and EDL. Uncertainty measures are `baselines.uncertainty`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from baselines.data import FLAGS, MODALITIES, TEXT_DIM
from baselines.losses import EVIDENTIAL_LOSSES, LOSS_SAMPLES, annealing, rcml_loss, sampling_softmax_nll, tmc_loss
from baselines.models import build_model
from baselines.train import TrainConfig, batches, resolve_device, train
from baselines.uncertainty import dirichlet_uncertainty, entropy_decomposition, sampled_softmax, softmax
from luma_builders.classes import NUM_ID_CLASSES

PREDICT_BATCH_SIZE = 256
SOFTMAX_SAMPLES = 20  # draws of the sigma head per pass/member when turning (mu, sigma) into probabilities
MC_PASSES = 20  # MC Dropout's stochastic forward passes at test time


@dataclass
class Prediction:
    mu: np.ndarray | None = None  # (T, N, K) logits, one slice per MC pass or ensemble member
    sigma: np.ndarray | None = None  # (T, N, K) aleatoric scales, aligned with mu
    alpha: np.ndarray | None = None  # (N, K) (fused) Dirichlet parameters (RCML, TMC, EDL)
    alphas: dict[str, np.ndarray] | None = None  # per modality (N, K) Dirichlet parameters (RCML, TMC)
    labels: np.ndarray | None = None  # (N,) targets, where the data had them
    is_ood: np.ndarray | None = None  # (N,) bool
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # provenance flags (label_switched, image_noise, ...)

    def probs(self) -> np.ndarray:
        """(N, K) predictive probabilities: the softmax of mu over classes averaged over passes (sigma ignored), or
        alpha / alpha_0."""
        if self.alpha is not None:
            return self.alpha / self.alpha.sum(axis=-1, keepdims=True)
        return softmax(self.mu).mean(axis=0)

    def logits(self) -> np.ndarray:
        """(S, N, K) logits: mu per pass or member, or log alpha (S = 1), whose softmax is alpha / alpha_0. For
        `temperature_scaling` and `ood_scores`."""
        if self.alpha is not None:
            return np.log(self.alpha)[np.newaxis]
        return self.mu


def predictive(prediction: Prediction, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N, K) predictive probabilities and the uncertainty measures of one prediction."""
    if prediction.alpha is not None:
        return prediction.probs(), dirichlet_uncertainty(prediction.alpha)
    member_probs = sampled_softmax(prediction.mu, prediction.sigma, SOFTMAX_SAMPLES, rng)
    return member_probs.mean(axis=0), entropy_decomposition(member_probs)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _targets(data: dict[str, torch.Tensor]) -> dict:
    return {
        "labels": _numpy(data["label"]) if "label" in data else None,
        "is_ood": _numpy(data["is_ood"]) if "is_ood" in data else None,
        "flags": {name: _numpy(data[name]) for name in FLAGS if name in data},
    }


class _Method:
    method: str

    def __init__(
        self,
        modalities=MODALITIES,
        train_config: TrainConfig | None = None,
        num_classes: int = NUM_ID_CLASSES,
        text_dim: int = TEXT_DIM,
    ):
        self.modalities = tuple(modalities)
        self.config = train_config or TrainConfig()
        self.num_classes = num_classes
        self.text_dim = text_dim

    def loss(self, model: nn.Module, batch: dict, epoch: int | None) -> torch.Tensor:
        """The `LossFn` that `train` minimises: `objective` of `model`'s outputs on `batch`."""
        return self.objective(model(batch), batch["label"], epoch)

    def fit(self, data: dict[str, torch.Tensor]) -> dict:
        """Train one model (Deep Ensemble overrides this with its members)."""
        self.model = self._new_model(self.config.seed)
        self.history = train(self.model, self.loss, data, self.config)
        return self.history

    def _new_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_model(self.method, self.modalities, self.num_classes, self.text_dim)

    def _outputs(self, model: nn.Module, data: dict, step) -> list:
        """`step(model, batch)` over `data` in batches, without gradients, its tuples concatenated per position."""
        device = resolve_device(self.config.device)
        model.to(device)
        n = len(next(iter(data.values())))
        with torch.no_grad():
            parts = [step(model, batch) for batch in batches(data, torch.arange(n), PREDICT_BATCH_SIZE, device)]
        return [torch.cat(column, dim=-2) for column in zip(*parts, strict=True)]


class _TwoHeadMethod(_Method):
    def __init__(self, *args, loss_samples: int = LOSS_SAMPLES, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_samples = loss_samples

    def objective(
        self, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor, epoch: int | None
    ) -> torch.Tensor:
        """The sampling softmax loss of a batch's (logits, sigma)."""
        logits, sigma = outputs
        return sampling_softmax_nll(logits, sigma, labels, self.loss_samples)


class MCDropout(_TwoHeadMethod):
    """Monte Carlo Dropout: `passes` stochastic forward passes with the dropout modules on (everything else in eval
    mode). The passes are seeded by the training seed, so `predict` is repeatable."""

    method = "mcd"

    def __init__(self, *args, passes: int = MC_PASSES, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes = passes
        self.model: nn.Module | None = None

    def predict(self, data: dict[str, torch.Tensor]) -> Prediction:
        self.model.eval()
        for module in self.model.modules():
            if isinstance(module, nn.Dropout):
                module.train()

        def step(model, batch):
            outputs = [model(batch) for _ in range(self.passes)]
            return torch.stack([mu for mu, _ in outputs]), torch.stack([sigma for _, sigma in outputs])

        device = resolve_device(self.config.device)
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(self.config.seed)
                mu, sigma = self._outputs(self.model, data, step)
        finally:
            self.model.eval()
        return Prediction(mu=_numpy(mu), sigma=_numpy(sigma), **_targets(data))


class DeepEnsemble(_TwoHeadMethod):
    """`members` late-fusion models; member m is initialised and trained with seed `train_config.seed + m`, all on the
    same training records (one validation split, that of `train_config`)."""

    method = "de"

    def __init__(self, *args, members: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = members
        self.models: list[nn.Module] = []

    def fit(self, data: dict[str, torch.Tensor]) -> list[dict]:
        self.models, self.history = [], []
        for m in range(self.members):
            seed = self.config.seed + m
            model = self._new_model(seed)
            # Every member sees the same training records (no bagging): only its initial weights and order differ.
            split_seed = self.config.seed if self.config.split_seed is None else self.config.split_seed
            self.history.append(train(model, self.loss, data, replace(self.config, seed=seed, split_seed=split_seed)))
            self.models.append(model)
        return self.history

    def predict(self, data: dict[str, torch.Tensor]) -> Prediction:
        mus, sigmas = [], []
        for model in self.models:
            model.eval()
            mu, sigma = self._outputs(model, data, lambda model, batch: model(batch))
            mus.append(mu)
            sigmas.append(sigma)
        return Prediction(mu=_numpy(torch.stack(mus)), sigma=_numpy(torch.stack(sigmas)), **_targets(data))


class _FusedDirichletMethod(_Method):
    """A network that returns (fused alpha, alpha per modality), trained with an evidential loss annealed over
    `anneal_epochs`."""

    def __init__(self, *args, anneal_epochs: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.anneal_epochs = anneal_epochs
        self.model: nn.Module | None = None

    def predict(self, data: dict[str, torch.Tensor]) -> Prediction:
        self.model.eval()

        def step(model, batch):
            fused, alphas = model(batch)
            return fused, *(alphas[m] for m in self.modalities)

        fused, *alphas = self._outputs(self.model, data, step)
        per_modality = {m: _numpy(alpha) for m, alpha in zip(self.modalities, alphas, strict=True)}
        return Prediction(alpha=_numpy(fused), alphas=per_modality, **_targets(data))


class RCML(_FusedDirichletMethod):
    """Reliable Conflictive Multi-View Learning (Xu et al., AAAI 2024) on LUMA's modalities: see
    `models.EvidentialFusion` (the fusion, and why the order of `modalities` matters) and `losses.rcml_loss`."""

    method = "rcml"

    def __init__(self, *args, gamma: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.gamma = gamma

    def objective(self, outputs: tuple[torch.Tensor, dict], labels: torch.Tensor, epoch: int | None) -> torch.Tensor:
        """RCML's loss of a batch's (fused alpha, alpha per modality), annealed by `epoch` (None: fully)."""
        fused, alphas = outputs
        return rcml_loss(fused, alphas, labels, epoch, self.anneal_epochs, self.gamma)


class TMC(_FusedDirichletMethod):
    """Trusted Multi-view Classification (Han et al., ICLR 2021): per-modality Dirichlets combined by Dempster-Shafer's
    rule (`models.DempsterShaferFusion`), trained with `losses.tmc_loss` (the fused and every view's EDL loss)."""

    method = "tmc"

    def objective(self, outputs: tuple[torch.Tensor, dict], labels: torch.Tensor, epoch: int | None) -> torch.Tensor:
        fused, alphas = outputs
        return tmc_loss(fused, alphas, labels, epoch, self.anneal_epochs)


class EDL(_Method):
    """Evidential deep learning (Sensoy et al., NeurIPS 2018): one Dirichlet output (`models.EvidentialNet`) trained
    with the expected squared error ("mse", the paper's Eq. 5) or the expected cross-entropy ("log"), plus the KL
    term on the misleading evidence annealed over `anneal_epochs`."""

    method = "edl"

    def __init__(self, *args, anneal_epochs: int = 10, edl_loss: str = "mse", **kwargs):
        super().__init__(*args, **kwargs)
        if edl_loss not in EVIDENTIAL_LOSSES:
            raise ValueError(f"unknown edl_loss {edl_loss!r}; choose one of: {', '.join(EVIDENTIAL_LOSSES)}")
        self.anneal_epochs = anneal_epochs
        self.edl_loss = edl_loss
        self.model: nn.Module | None = None

    def objective(self, alpha: torch.Tensor, labels: torch.Tensor, epoch: int | None) -> torch.Tensor:
        return EVIDENTIAL_LOSSES[self.edl_loss](alpha, labels, annealing(epoch, self.anneal_epochs)).mean()

    def predict(self, data: dict[str, torch.Tensor]) -> Prediction:
        self.model.eval()
        (alpha,) = self._outputs(self.model, data, lambda model, batch: (model(batch),))
        return Prediction(alpha=_numpy(alpha), **_targets(data))


METHODS = {"mcd": MCDropout, "de": DeepEnsemble, "rcml": RCML, "edl": EDL, "tmc": TMC}


def make_method(name: str, modalities=MODALITIES, train_config: TrainConfig | None = None, **kwargs) -> _Method:
    """The method called `name` (mcd, de, rcml, edl or tmc); `kwargs` go to its class (passes, members, anneal_epochs,
    gamma, edl_loss, loss_samples, num_classes, text_dim)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name](modalities, train_config, **kwargs)
