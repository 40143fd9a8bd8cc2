"""Continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham 2019): a normalized density for [0,1] grey levels."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import DataError
from ..registry import LIKELIHOODS
from .bernoulli import BernoulliLikelihood


@dataclass
class ContinuousBernoulliConfig:
    type: str = "continuous_bernoulli"


@LIKELIHOODS.register("continuous_bernoulli", ContinuousBernoulliConfig)
class ContinuousBernoulliLikelihood(BernoulliLikelihood):
    """CB(λ = sigmoid ℓ) per pixel: log p(x|z) = Σ x·ℓ − softplus(ℓ) + log C(λ), C the normalizer on [0, 1]."""

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        (logits,) = self.split(params)
        return dist.ContinuousBernoulli(logits=logits).to_event(len(self.data_shape))

    def mean(self, params: Tensor) -> Tensor:
        return self.distribution(params).base_dist.mean

    def validate(self, x: Tensor) -> None:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0 or not torch.isfinite(x).all():
            raise DataError(f"continuous_bernoulli likelihood needs pixel values in [0, 1], got range [{lo:g}, {hi:g}] "
                            "(set data.scale: true)")
