"""The full-covariance Gaussian guide q(z|x) = N(μ(x), L(x)L(x)ᵀ) with a Cholesky head on the encoder's features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from ..registry import GUIDES
from .base import Guide


@dataclass
class FullCovarianceGuideConfig:
    type: str = "full_covariance"


@GUIDES.register("full_covariance", FullCovarianceGuideConfig)
class FullCovarianceGuide(Guide):
    """Full-covariance N(μ(x), LLᵀ), L = diag σ(x) + strictly-lower(W h(x) + b), z = μ + L ε.

    The diagonal of L is the encoder's σ(x) = exp(½ logvar(x)) > 0; the D(D−1)/2 entries below it come
    from a linear head on h(x), initialised at zero so training starts from the diagonal Gaussian.
    """

    def __init__(self, config: FullCovarianceGuideConfig, latent_dim: int, feature_dim: int) -> None:
        super().__init__(latent_dim, feature_dim)
        rows, cols = torch.tril_indices(latent_dim, latent_dim, offset=-1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.off_diagonal = nn.Linear(feature_dim, rows.numel())
        nn.init.zeros_(self.off_diagonal.weight)
        nn.init.zeros_(self.off_diagonal.bias)

    def scale_tril(self, scale: Tensor, h: Tensor) -> Tensor:
        """L(x), shape ``(B, D, D)``: σ(x) on the diagonal, the head's outputs strictly below it."""
        off = self.off_diagonal(h)
        lower = off.new_zeros(*off.shape[:-1], self.latent_dim, self.latent_dim)
        lower[..., self.rows, self.cols] = off
        return lower + torch.diag_embed(scale)

    def distribution(self, loc: Tensor, scale: Tensor, h: Optional[Tensor]) -> dist.TorchDistribution:
        return dist.MultivariateNormal(loc, scale_tril=self.scale_tril(scale, h))
