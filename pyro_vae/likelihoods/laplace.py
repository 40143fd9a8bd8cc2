"""Laplace likelihood Laplace(x | decoder(z), b): an L1 reconstruction error, with b fixed, learned or predicted."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.distributions as dist
import torch
from torch import Tensor

from ..errors import DataError
from ..registry import LIKELIHOODS
from .gaussian import GaussianConfig, GaussianLikelihood


@dataclass
class LaplaceConfig(GaussianConfig):
    """The Gaussian's options, with ``sigma`` read as the Laplace scale b."""

    type: str = "laplace"


@LIKELIHOODS.register("laplace", LaplaceConfig)
class LaplaceLikelihood(GaussianLikelihood):
    """Laplace(μ = decoder(z), b) per pixel: log p(x|z) = −Σ |x−μ|/b − Σ log 2b (b as the gaussian's σ)."""

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        loc = self.split(params)[0]
        return dist.Laplace(loc, self.scale(params).expand_as(loc)).to_event(len(self.data_shape))

    def validate(self, x: Tensor) -> None:
        if not torch.isfinite(x).all():
            raise DataError("laplace likelihood: data contains NaN or Inf values")
