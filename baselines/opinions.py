"""Subjective opinions of Dirichlet outputs and their Dempster-Shafer combination (Han et al., ICLR 2021, "Trusted
Multi-View Classification", Definitions 1-4).

A Dirichlet alpha (N, K) with evidence e = alpha - 1 and strength S = sum_k alpha_k is the opinion
belief b_k = e_k / S, uncertainty u = K / S (so sum_k b_k + u = 1). Two opinions combine by the reduced
Dempster-Shafer rule

    b_k = (b1_k b2_k + b1_k u2 + b2_k u1) / (1 - C),  u = u1 u2 / (1 - C),  C = sum_{i != j} b1_i b2_j,

and the combined opinion maps back to a Dirichlet with S = K / u, e_k = b_k S. Torch throughout, so that TMC trains
through the fusion.
"""

from __future__ import annotations

import torch


def opinion(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(belief (N, K), uncertainty (N, 1)) of Dirichlet parameters `alpha` (N, K) >= 1."""
    strength = alpha.sum(dim=-1, keepdim=True)
    return (alpha - 1) / strength, alpha.shape[-1] / strength


def combine_opinions(alpha1: torch.Tensor, alpha2: torch.Tensor) -> torch.Tensor:
    """The Dirichlet of the reduced Dempster-Shafer combination of the opinions of `alpha1` and `alpha2` (N, K)."""
    (b1, u1), (b2, u2) = opinion(alpha1), opinion(alpha2)
    unnormalised_belief = b1 * b2 + b1 * u2 + b2 * u1
    unnormalised_uncertainty = u1 * u2
    # 1 - C written as the mass that does not conflict: no cancellation when the conflict C is close to 1.
    agreement = unnormalised_belief.sum(dim=-1, keepdim=True) + unnormalised_uncertainty
    belief, uncertainty = unnormalised_belief / agreement, unnormalised_uncertainty / agreement
    strength = alpha1.shape[-1] / uncertainty
    return belief * strength + 1


def fuse_opinions(alphas: list[torch.Tensor]) -> torch.Tensor:
    """TMC's fusion of the views' Dirichlets `alphas` (each (N, K)): `combine_opinions` pairwise, left to right. The
    rule is commutative and associative, so the order of the views does not change the result (up to rounding)."""
    if not alphas:
        raise ValueError("fuse_opinions needs at least one view's alpha")
    fused = alphas[0]
    for alpha in alphas[1:]:
        fused = combine_opinions(fused, alpha)
    return fused
