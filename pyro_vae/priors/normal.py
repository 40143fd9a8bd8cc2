"""The standard Normal prior N(0, I)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyro.distributions as dist
import torch
from torch import Tensor

from ..registry import PRIORS
from .base import Prior


@dataclass
class NormalPriorConfig:
    type: str = "normal"


@PRIORS.register("normal", NormalPriorConfig)
class NormalPrior(Prior):
    """Standard Normal N(0, I): the VAE's default, with a closed-form KL to a diagonal Gaussian guide."""

    def __init__(self, config: NormalPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        return dist.Normal(self.loc, self.scale).to_event(1)
