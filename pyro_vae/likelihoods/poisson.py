"""Poisson likelihood for counts (e.g. gene expression): the decoder emits the log-rate of each feature."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.distributions as dist
import torch
from torch import Tensor

from ..config.schema import opt
from ..errors import DataError
from ..registry import LIKELIHOODS
from .base import Likelihood


def check_counts(x: Tensor, name: str) -> None:
    """DataError unless ``x`` holds finite non-negative integers."""
    if not torch.isfinite(x).all():
        raise DataError(f"{name} likelihood: data contains NaN or Inf values; expected counts 0, 1, 2, ...")
    lo = float(x.min())
    off = float((x - x.round()).abs().max())
    if lo < 0 or off > 1e-6:
        raise DataError(f"{name} likelihood needs non-negative integer counts, got values in [{lo:g}, "
                        f"{float(x.max()):g}]{' that are not whole numbers' if off > 1e-6 else ''} "
                        "(use data.standardize: false and raw counts, or a gaussian likelihood)")


@dataclass
class PoissonConfig:
    type: str = "poisson"
    max_log_rate: float = opt(15.0, "upper clamp on the decoder's log-rate (keeps exp finite)")


@LIKELIHOODS.register("poisson", PoissonConfig)
class PoissonLikelihood(Likelihood):
    """Poisson(λ = exp ℓ(z)) per feature: log p(x|z) = Σ x·ℓ − e^ℓ − log x!."""

    def __init__(self, config: PoissonConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config

    def rate(self, params: Tensor) -> Tensor:
        return self.split(params)[0].clamp(max=self.config.max_log_rate).exp()

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        return dist.Poisson(self.rate(params)).to_event(len(self.data_shape))

    def mean(self, params: Tensor) -> Tensor:
        return self.rate(params)

    def validate(self, x: Tensor) -> None:
        check_counts(x, "poisson")
