"""Gaussian likelihood N(x | decoder(z), σ²) with σ fixed, learned (shared or per pixel) or predicted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pyro.distributions as dist
import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ..config.schema import opt, positive
from ..errors import DataError
from ..registry import LIKELIHOODS
from .base import Likelihood


@dataclass
class GaussianConfig:
    type: str = "gaussian"
    sigma: float = opt(0.1, "σ when fixed (learn: fixed)", positive, "a number > 0")
    init_sigma: float = opt(1.0, "the starting σ when learned (shared, per_dim, decoder): 1 is the spread of "
                                 "standardized data", positive, "a number > 0")
    learn: Literal["fixed", "shared", "per_dim", "decoder"] = opt(
        "fixed", "fixed σ; one learned σ; a learned σ per pixel; or σ predicted by the decoder"
    )
    min_sigma: float = opt(1e-3, "lower bound on a learned or predicted σ", positive, "a number > 0")


@LIKELIHOODS.register("gaussian", GaussianConfig)
class GaussianLikelihood(Likelihood):
    """Normal(μ = decoder(z), σ) per pixel: log p(x|z) = −½‖(x−μ)/σ‖² − Σ log σ − (D/2) log 2π."""

    def __init__(self, config: GaussianConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config
        self.num_params = 2 if config.learn == "decoder" else 1
        # σ = min_sigma + softplus(ρ); ρ initialised so that a learned σ starts at config.init_sigma
        rho = math.log(math.expm1(max(config.init_sigma - config.min_sigma, 1e-6)))
        if config.learn == "shared":
            self.rho = nn.Parameter(torch.tensor(rho))
        elif config.learn == "per_dim":
            self.rho = nn.Parameter(torch.full(self.data_shape, rho))
        else:
            self.register_buffer("rho", torch.tensor(rho))

    def scale(self, params: Tensor) -> Tensor:
        if self.config.learn == "fixed":
            return params.new_tensor(self.config.sigma)
        rho = self.split(params)[1] + self.rho if self.config.learn == "decoder" else self.rho
        return self.config.min_sigma + softplus(rho)

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        loc = self.split(params)[0]
        return dist.Normal(loc, self.scale(params).expand_as(loc)).to_event(len(self.data_shape))

    def validate(self, x: Tensor) -> None:
        if not torch.isfinite(x).all():
            raise DataError("gaussian likelihood: data contains NaN or Inf values")
