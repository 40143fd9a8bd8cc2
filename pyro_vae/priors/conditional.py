"""The conditional prior p(z|c) of a conditional VAE: learned by a network of c, or fixed N(0, I)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Literal, Optional

import pyro.distributions as dist
import torch
from torch import Tensor, nn

from ..config.schema import opt
from ..errors import ConfigError, DataError
from ..nets.base import GaussianHead, mlp
from ..registry import PRIORS
from .base import ConditionalPrior as ConditionalPriorBase


UNCONDITIONED = ("model.prior.learn: a learned p(z|c) needs a conditional model (model.type: cvae); "
                 "use learn: false for N(0, I)")


@dataclass
class ConditionalPriorConfig:
    type: str = "conditional"
    learn: bool = opt(True, "true: p(z|c) = N(μ(c), diag σ²(c)) from a network; false: the fixed N(0, I)")
    hidden_dims: List[int] = opt([256], "widths of the prior network's hidden layers")
    activation: Literal["relu", "tanh", "elu", "softplus", "gelu"] = opt("relu", "nonlinearity")


@PRIORS.register("conditional", ConditionalPriorConfig)
class GaussianConditionalPrior(ConditionalPriorBase):
    """p(z|c) = N(μ(c), diag σ²(c)) from a network of the condition c, or the fixed N(0, I) (``learn: false``).

    Built with the condition width ``cond_dim`` by conditional models (see :class:`~pyro_vae.models.cvae.CVAE`).
    """

    def __init__(self, config: ConditionalPriorConfig, latent_dim: int, cond_dim: int = 0) -> None:
        super().__init__(latent_dim, cond_dim)
        self.config = config
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        self.net: Optional[nn.Module] = None
        if config.learn:
            if cond_dim < 1:
                raise ConfigError(UNCONDITIONED)
            dims = [cond_dim, *config.hidden_dims]
            self.net = nn.Sequential(mlp(dims, config.activation), GaussianHead(dims[-1], latent_dim))

    @classmethod
    def needs_condition(cls, config: ConditionalPriorConfig) -> bool:
        return config.learn

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        if context is not None and context.shape[-1] != self.cond_dim:
            raise DataError(f"p(z|c): condition has width {context.shape[-1]}, expected {self.cond_dim}")
        if self.net is None:
            base = dist.Normal(self.loc, self.scale)
            return (base if context is None else base.expand((*context.shape[:-1], self.latent_dim))).to_event(1)
        if context is None:
            raise DataError("p(z|c): the learned conditional prior needs the condition c")
        loc, scale = self.net(context)
        return dist.Normal(loc, scale).to_event(1)


ConditionalPrior = GaussianConditionalPrior  # the registered ``conditional`` prior under its former name
