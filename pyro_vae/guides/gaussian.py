"""The diagonal Gaussian guide q(z|x) = N(μ(x), diag σ²(x)): the encoder's own head, the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyro.distributions as dist
from torch import Tensor

from ..registry import GUIDES
from .base import Guide


@dataclass
class GaussianGuideConfig:
    type: str = "gaussian"


@GUIDES.register("gaussian", GaussianGuideConfig)
class GaussianGuide(Guide):
    """Diagonal Gaussian N(μ(x), diag σ²(x)), z = μ + σ ⊙ ε: the encoder's head itself (no parameters of its own).
    """

    diagonal_gaussian = True
    needs_features = False

    def __init__(self, config: GaussianGuideConfig, latent_dim: int, feature_dim: int = 0) -> None:
        super().__init__(latent_dim, feature_dim)

    def distribution(self, loc: Tensor, scale: Tensor, h: Optional[Tensor] = None) -> dist.TorchDistribution:
        return dist.Normal(loc, scale).to_event(1)
