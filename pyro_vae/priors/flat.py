"""The improper flat prior p(z) ∝ 1: the "no prior" of a plain autoencoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pyro.distributions as dist
from pyro.distributions import constraints
from torch import Tensor

from ..registry import PRIORS
from .base import ImproperPrior


@dataclass
class FlatPriorConfig:
    type: str = "flat"


@PRIORS.register("flat", FlatPriorConfig)
class FlatPrior(ImproperPrior):
    """Improper flat p(z) ∝ 1 (log p(z) = 0): with a Delta guide, SVI is maximum likelihood of p(x|f(x)).

    It has no samples: a model with this prior cannot generate from p(z).
    """

    def __init__(self, config: FlatPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        return dist.ImproperUniform(constraints.real, (), (self.latent_dim,))
