"""Negative binomial likelihood for overdispersed counts (scVI-style): mean μ from the decoder, inverse
dispersion θ learned (shared, per feature) or predicted; Var[x] = μ + μ²/θ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pyro.distributions as dist
import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ..config.schema import opt, positive
from ..registry import LIKELIHOODS
from .base import Likelihood
from .poisson import check_counts


@dataclass
class NegativeBinomialConfig:
    type: str = "negative_binomial"
    theta: float = opt(1.0, "initial inverse dispersion θ (Var = μ + μ²/θ; θ → ∞ is Poisson)", positive,
                       "a number > 0")
    learn: Literal["shared", "per_dim", "decoder"] = opt("per_dim", "one learned θ; one per feature; or θ "
                                                                     "predicted by the decoder")
    max_log_rate: float = opt(15.0, "upper clamp on the decoder's log-mean (keeps exp finite)")


@LIKELIHOODS.register("negative_binomial", NegativeBinomialConfig)
class NegativeBinomialLikelihood(Likelihood):
    """NB(μ = exp ℓ(z), θ) per feature: log p(x|z) = log Γ(x+θ) − log Γ(θ) − log x! + θ log(θ/(θ+μ)) + x log(μ/(θ+μ))."""

    def __init__(self, config: NegativeBinomialConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config
        self.num_params = 2 if config.learn == "decoder" else 1
        rho = math.log(math.expm1(config.theta))  # θ = softplus(ρ)
        self.rho = nn.Parameter(torch.full(self.data_shape, rho) if config.learn == "per_dim" else torch.tensor(rho))

    def theta(self, params: Tensor) -> Tensor:
        rho = self.split(params)[1] + self.rho if self.config.learn == "decoder" else self.rho
        return softplus(rho) + 1e-6

    def mu(self, params: Tensor) -> Tensor:
        return self.split(params)[0].clamp(max=self.config.max_log_rate).exp()

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        log_mu = self.split(params)[0].clamp(max=self.config.max_log_rate)
        theta = self.theta(params).expand_as(log_mu)
        # torch's NB(total_count = θ, logits = log μ − log θ) has mean θ·e^logits = μ
        return dist.NegativeBinomial(total_count=theta, logits=log_mu - theta.log()).to_event(len(self.data_shape))

    def mean(self, params: Tensor) -> Tensor:
        return self.mu(params)

    def validate(self, x: Tensor) -> None:
        check_counts(x, "negative_binomial")
