"""Training losses: the sampling softmax for the two-head networks, the evidential losses of EDL, RCML and TMC."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOSS_SAMPLES = 20  # draws of the sigma head per record in the sampling softmax loss


def sampling_softmax_nll(
    logits: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor, num_samples: int = LOSS_SAMPLES
) -> torch.Tensor:
    """Mean negative log-likelihood of the labels under E_eps[softmax(logits + sigma * eps)], eps ~ N(0, 1).

    The expectation over `num_samples` draws is taken in probability space (Kendall & Gal 2017, Valdenegro-Toro &
    Mori 2022) and computed stably as a log-mean-exp of log-softmaxes; the softmax runs over the class axis (the last).
    With sigma = 0 every draw is the same and the loss is exactly the cross-entropy. Draws use torch's global
    generator.
    """
    eps = torch.randn((num_samples, *logits.shape), dtype=logits.dtype, device=logits.device)
    log_probs = F.log_softmax(logits + sigma * eps, dim=-1)  # (T, N, K)
    target = log_probs.gather(-1, labels.view(1, -1, 1).expand(num_samples, -1, 1)).squeeze(-1)  # (T, N)
    return -(torch.logsumexp(target, dim=0) - math.log(num_samples)).mean()


def kl_to_uniform(alpha: torch.Tensor) -> torch.Tensor:
    """KL(Dir(alpha) || Dir(1, ..., 1)) per row of (N, K) alpha."""
    total = alpha.sum(dim=-1)
    num_classes = alpha.shape[-1]
    log_norm = torch.lgamma(total) - torch.lgamma(alpha).sum(dim=-1) - math.lgamma(num_classes)
    return log_norm + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(total).unsqueeze(-1))).sum(dim=-1)


def annealing(epoch: int | None, anneal_epochs: int) -> float:
    """The KL weight min(1, epoch / anneal_epochs); `epoch` None means fully annealed (1)."""
    if epoch is None or anneal_epochs <= 0:
        return 1.0
    return min(1.0, epoch / anneal_epochs)


def evidential_ce(alpha: torch.Tensor, labels: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Per-sample evidential loss (Sensoy et al. 2018, digamma form) as RCML uses it: the expected cross-entropy
    E_{p ~ Dir(alpha)}[-log p_y] = psi(alpha_0) - psi(alpha_y), plus `kl_weight` times the KL divergence to the uniform
    Dirichlet of alpha with the true class's evidence removed (alpha_y set to 1)."""
    target = F.one_hot(labels, alpha.shape[-1]).bool()
    expected_ce = torch.digamma(alpha.sum(dim=-1)) - torch.digamma(alpha.gather(-1, labels.unsqueeze(-1)).squeeze(-1))
    misleading = torch.where(target, torch.ones_like(alpha), alpha)
    return expected_ce + kl_weight * kl_to_uniform(misleading)


def evidential_mse(alpha: torch.Tensor, labels: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Per-sample evidential loss of Sensoy et al. (2018), Eq. 5: the expected squared error under Dir(alpha),
    sum_k (y_k - p_k)^2 + p_k (1 - p_k) / (alpha_0 + 1) with p = alpha / alpha_0, plus `kl_weight` times the KL
    divergence to the uniform Dirichlet of the misleading evidence (alpha_y set to 1), as in `evidential_ce`."""
    target = F.one_hot(labels, alpha.shape[-1]).to(alpha.dtype)
    total = alpha.sum(dim=-1, keepdim=True)
    probs = alpha / total
    expected_error = ((target - probs) ** 2 + probs * (1 - probs) / (total + 1)).sum(dim=-1)
    misleading = torch.where(target.bool(), torch.ones_like(alpha), alpha)
    return expected_error + kl_weight * kl_to_uniform(misleading)


EVIDENTIAL_LOSSES = {"mse": evidential_mse, "log": evidential_ce}


def tmc_loss(
    fused_alpha: torch.Tensor,
    alphas: dict[str, torch.Tensor],
    labels: torch.Tensor,
    epoch: int | None,
    anneal_epochs: int = 10,
) -> torch.Tensor:
    """TMC's loss (Han et al., 2021, Eq. 10): the evidential loss (`evidential_ce`, KL weight annealed as in
    `rcml_loss`) of the fused opinion plus that of every view, summed, each averaged over the batch."""
    weight = annealing(epoch, anneal_epochs)
    return torch.stack([evidential_ce(alpha, labels, weight).mean() for alpha in (fused_alpha, *alphas.values())]).sum()


def conflict_degree(alphas: list[torch.Tensor]) -> torch.Tensor:
    """RCML's conflictive-degree loss, averaged over the batch.

    For views i != j with expected probabilities p = alpha / alpha_0 and uncertainty masses u = K / alpha_0, the
    conflict is the total variation distance between p_i and p_j times (1 - u_i)(1 - u_j): two views conflict when
    both are confident and disagree. It is summed over ordered pairs and divided by V - 1 (zero for a single view).
    """
    views = len(alphas)
    if views < 2:
        return alphas[0].new_zeros(())
    alpha = torch.stack(alphas)  # (V, N, K)
    total = alpha.sum(dim=-1, keepdim=True)
    probs = alpha / total
    certainty = 1 - alpha.shape[-1] / total.squeeze(-1)  # (V, N)
    distance = (probs.unsqueeze(0) - probs.unsqueeze(1)).abs().sum(dim=-1) / 2  # (V, V, N), zero on the diagonal
    agreement = certainty.unsqueeze(0) * certainty.unsqueeze(1)
    return (distance * agreement).sum(dim=(0, 1)).mean() / (views - 1)


def rcml_loss(
    fused_alpha: torch.Tensor,
    alphas: dict[str, torch.Tensor],
    labels: torch.Tensor,
    epoch: int | None,
    anneal_epochs: int = 10,
    gamma: float = 1.0,
) -> torch.Tensor:
    """RCML's loss: the evidential loss of the fused opinion and of each view, averaged over the V + 1 of them (the
    fused term on `fused_alpha`, the view terms on `alphas`), plus `gamma` times `conflict_degree` of the views.

    The KL term is annealed by min(1, epoch / anneal_epochs), epochs counted from 1; epoch None gives the fully
    annealed loss, which is what validation uses so that the losses of different epochs compare.
    """
    weight = annealing(epoch, anneal_epochs)
    views = list(alphas.values())
    terms = [evidential_ce(alpha, labels, weight).mean() for alpha in (fused_alpha, *views)]
    return torch.stack(terms).mean() + gamma * conflict_degree(views)
