"""Discretized logistic likelihood for 8-bit images (PixelCNN++ / IAF-VAE): a logistic integrated over each bin."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor
from torch.distributions.utils import broadcast_all
from torch.nn.functional import logsigmoid, softplus

from ..config.schema import opt
from ..fast.compat import checked_instance, copy_validation, extended_shape
from ..config.validators import at_least
from ..registry import LIKELIHOODS
from .base import Likelihood, check_levels


class DiscretizedLogistic(dist.TorchDistribution):
    """Logistic(μ, s) integrated over the bins of width 1/(L−1) around x ∈ {0, 1/(L−1), …, 1}; the edge bins
    take the tails: p(x) = σ((x + δ − μ)/s) − σ((x − δ − μ)/s), δ = ½/(L−1)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.unit_interval

    def __init__(self, loc: Tensor, scale: Tensor, levels: int = 256, validate_args=None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        self.levels = levels
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = checked_instance(self, DiscretizedLogistic, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc, new.scale, new.levels = self.loc.expand(batch_shape), self.scale.expand(batch_shape), self.levels
        super(DiscretizedLogistic, new).__init__(batch_shape, validate_args=False)
        copy_validation(new, self)
        return new

    def log_prob(self, value: Tensor) -> Tensor:
        half = 0.5 / (self.levels - 1)
        centred, inv_s = value - self.loc, 1.0 / self.scale
        plus, minus = inv_s * (centred + half), inv_s * (centred - half)
        log_cdf_plus = logsigmoid(plus)                    # lowest bin: all mass below x + δ
        log_survival_minus = -softplus(minus)              # highest bin: all mass above x − δ
        # interior bins: log(σ(plus) − σ(minus)), stably; fall back to the density × width when tiny
        delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv_s * centred
        log_density_mid = mid - self.scale.log() - 2.0 * softplus(mid) - math.log(self.levels - 1)
        interior = torch.where(delta > 1e-5, delta.clamp(min=1e-12).log(), log_density_mid)
        return torch.where(value < half, log_cdf_plus, torch.where(value > 1 - half, log_survival_minus, interior))

    def sample(self, sample_shape=torch.Size()) -> Tensor:
        with torch.no_grad():
            shape = extended_shape(self, sample_shape)
            u = torch.rand(shape, device=self.loc.device).clamp(1e-5, 1 - 1e-5)
            x = self.loc.expand(shape) + self.scale.expand(shape) * (u.log() - (-u).log1p())
            return (x.clamp(0, 1) * (self.levels - 1)).round() / (self.levels - 1)

    @property
    def mean(self) -> Tensor:  # (approximately: the clamp of the logistic's mean)
        return self.loc.clamp(0, 1)


@dataclass
class DiscretizedLogisticConfig:
    type: str = "discretized_logistic"
    levels: int = opt(256, "number L of grey levels (256 for 8-bit images)", at_least(2), "an integer >= 2")
    min_log_scale: float = opt(-7.0, "lower bound on the predicted log s")


@LIKELIHOODS.register("discretized_logistic", DiscretizedLogisticConfig)
class DiscretizedLogisticLikelihood(Likelihood):
    """Discretized Logistic(μ, s) per pixel, μ and log s from the decoder: a probability mass on the L grey levels."""

    num_params = 2

    def __init__(self, config: DiscretizedLogisticConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config
        self.levels = config.levels  # a probability mass on the L grey levels

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        loc, log_scale = self.split(params)
        scale = log_scale.clamp(min=self.config.min_log_scale).exp()
        return DiscretizedLogistic(loc, scale, self.config.levels).to_event(len(self.data_shape))

    def validate(self, x: Tensor) -> None:
        check_levels(x, self.config.levels, "discretized_logistic")
