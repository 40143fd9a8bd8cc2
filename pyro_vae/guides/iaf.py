"""Inverse autoregressive flow guide (Kingma et al. 2016): z = f_T ∘ … ∘ f_1(z0), z0 ~ N(μ(x), diag σ²(x)).

Each f_t is Pyro's :class:`~pyro.distributions.transforms.ConditionalAffineAutoregressive` (z ↦ m_t + s_t ⊙ z,
(m_t, s_t) from a :class:`~pyro.nn.ConditionalAutoRegressiveNN` of z and the context c(x) = W h(x) + b), with
the dims reversed between transforms. Sampling is one network pass per transform; the site's
``TransformedDistribution`` scores its own sample exactly, log q(z|x) = log q0(z0|x) − Σ_t log |det ∂f_t/∂z|,
because each transform (the reversals too) caches the input it was called on (an arbitrary z would need D
network passes per transform to invert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import pyro.distributions as dist
import torch
from pyro.distributions import transforms as T
from pyro.nn import ConditionalAutoRegressiveNN
from torch import Tensor, nn

from ..config.schema import all_positive, opt, positive
from ..errors import ConfigError
from ..priors.flow import Reverse
from ..registry import GUIDES
from .base import Guide


@dataclass
class IAFGuideConfig:
    type: str = "iaf"
    num_transforms: int = opt(2, "number T of inverse autoregressive transforms (dims reversed between them)",
                              positive, "an integer >= 1")
    hidden_dims: List[int] = opt([64, 64], "hidden widths of each transform's autoregressive network (each >= "
                                 "latent_dim)", all_positive, "a list of integers >= 1")
    context_dim: int = opt(32, "width of the context c(x) = W h(x) + b every transform reads", positive,
                           "an integer >= 1")


@GUIDES.register("iaf", IAFGuideConfig)
class IAFGuide(Guide):
    """IAF z = f_T∘…∘f_1(z0), z0 ~ N(μ(x), σ²(x)): log q(z|x) = log q0(z0|x) − Σ_t log|det ∂f_t/∂z_{t−1}|."""

    detachable_density = False  # log q at stop-gradient parameters would invert the flow (no DReG)

    def __init__(self, config: IAFGuideConfig, latent_dim: int, feature_dim: int) -> None:
        super().__init__(latent_dim, feature_dim)
        self.context = nn.Linear(feature_dim, config.context_dim)
        order = torch.arange(latent_dim)  # the identity order: Reverse between transforms permutes the dims
        self.transforms = nn.ModuleList(
            T.ConditionalAffineAutoregressive(ConditionalAutoRegressiveNN(
                latent_dim, config.context_dim, list(config.hidden_dims), permutation=order))
            for _ in range(config.num_transforms))

    @classmethod
    def check_config(cls, config: Any, latent_dim: int) -> None:
        small = [h for h in config.hidden_dims if h < latent_dim]
        if not config.hidden_dims or small:
            raise ConfigError(f"model.guide.hidden_dims: each autoregressive layer needs a width >= latent_dim "
                              f"({latent_dim}), got {list(config.hidden_dims)}")

    def chain(self, context: Tensor) -> List[T.Transform]:
        """The transforms f_1, reverse, f_2, …, each conditioned on ``context`` ``(B, context_dim)``."""
        out: List[T.Transform] = []
        for i, t in enumerate(self.transforms):
            out += ([Reverse(cache_size=1)] if i > 0 and self.latent_dim > 1 else []) + [t.condition(context)]
        return out

    def distribution(self, loc: Tensor, scale: Tensor, h: Optional[Tensor]) -> dist.TorchDistribution:
        base = dist.Normal(loc, scale).to_event(1)
        return dist.TransformedDistribution(base, self.chain(self.context(h)))
