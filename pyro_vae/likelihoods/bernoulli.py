"""Bernoulli likelihood with decoder logits, for binary (or [0,1] grey-level) pixels."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import DataError
from ..registry import LIKELIHOODS
from .base import Likelihood


@dataclass
class BernoulliConfig:
    type: str = "bernoulli"


@LIKELIHOODS.register("bernoulli", BernoulliConfig)
class BernoulliLikelihood(Likelihood):
    """Bernoulli(logits = decoder(z)) per pixel: log p(x|z) = Σ x·ℓ − softplus(ℓ)."""

    levels = 2  # a probability mass on {0, 1} (grey values in between are scored as soft targets, not a mass)

    def __init__(self, config: BernoulliConfig, data_shape) -> None:
        super().__init__(data_shape)

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        (logits,) = self.split(params)
        # validate_args=False: grey levels in [0, 1] are scored as soft targets (checked by `validate`).
        return dist.Bernoulli(logits=logits, validate_args=False).to_event(len(self.data_shape))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(self.split(params)[0])

    def validate(self, x: Tensor) -> None:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0 or not torch.isfinite(x).all():
            raise DataError(
                f"bernoulli likelihood needs pixel values in [0, 1], got range [{lo:g}, {hi:g}] "
                "(set data.scale: true, or use a gaussian likelihood)"
            )
