"""The factorial Laplace prior p(z) = Π_d Laplace(z_d | 0, b): the sparse-coding prior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyro.distributions as dist
import torch
from torch import Tensor

from ..config.schema import opt, positive
from ..registry import PRIORS
from .base import Prior


@dataclass
class LaplacePriorConfig:
    type: str = "laplace"
    scale: float = opt(1.0, "scale b of each Laplace(0, b) (variance 2b²)", positive, "a number > 0")


@PRIORS.register("laplace", LaplacePriorConfig)
class LaplacePrior(Prior):
    """Factorial Laplace(0, b): log p(z) = −Σ_d |z_d|/b − D log 2b (heavy-tailed, sparse codes)."""

    def __init__(self, config: LaplacePriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.full((latent_dim,), config.scale))

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        return dist.Laplace(self.loc, self.scale).to_event(1)
