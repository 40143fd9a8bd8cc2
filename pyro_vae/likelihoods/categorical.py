"""Categorical likelihood over L grey levels (PixelRNN-style 256-way softmax): one logit per level and pixel."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor

from ..config.schema import opt
from ..fast.compat import checked_instance, copy_validation
from ..registry import LIKELIHOODS
from .base import Likelihood, check_levels


class LevelCategorical(dist.TorchDistribution):
    """x ∈ {0, 1/(L−1), …, 1} with p(x = k/(L−1)) = softmax(ℓ)_k; ``logits`` has the L levels last."""

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.unit_interval

    def __init__(self, logits: Tensor, validate_args=None) -> None:
        self.logits = logits - logits.logsumexp(-1, keepdim=True)  # normalized log-probabilities
        self.levels = logits.shape[-1]
        super().__init__(logits.shape[:-1], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = checked_instance(self, LevelCategorical, _instance)
        batch_shape = torch.Size(batch_shape)
        new.logits, new.levels = self.logits.expand(batch_shape + (self.levels,)), self.levels
        super(LevelCategorical, new).__init__(batch_shape, validate_args=False)
        copy_validation(new, self)
        return new

    def index(self, value: Tensor) -> Tensor:
        """The level k of each value k/(L−1)."""
        return (value * (self.levels - 1)).round().long().clamp(0, self.levels - 1)

    def log_prob(self, value: Tensor) -> Tensor:
        logits, k = self.logits, self.index(value)
        if k.shape != logits.shape[:-1]:  # e.g. particles × batch logits against batch data
            shape = torch.broadcast_shapes(k.shape, logits.shape[:-1])
            logits, k = logits.expand(shape + (self.levels,)), k.expand(shape)
        return logits.gather(-1, k.unsqueeze(-1)).squeeze(-1)

    def sample(self, sample_shape=torch.Size()) -> Tensor:
        with torch.no_grad():
            k = torch.distributions.Categorical(logits=self.logits).sample(sample_shape)
            return k.to(self.logits.dtype) / (self.levels - 1)

    @property
    def mean(self) -> Tensor:
        grid = torch.linspace(0, 1, self.levels, dtype=self.logits.dtype, device=self.logits.device)
        return (self.logits.exp() * grid).sum(-1)


@dataclass
class CategoricalConfig:
    type: str = "categorical"
    levels: int = opt(256, "number L of grey levels; the decoder emits L logits per pixel (256 for 8-bit "
                           "images, 17 for the 0..16 digits with data.binarize: none)", lambda v: v >= 2,
                      "an integer >= 2")


@LIKELIHOODS.register("categorical", CategoricalConfig)
class CategoricalLikelihood(Likelihood):
    """Categorical over the L grey levels per pixel: log p(x|z) = Σ_pixels log softmax(ℓ(z))_{x·(L−1)}."""

    def __init__(self, config: CategoricalConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config
        self.levels = config.levels  # a probability mass on the L grey levels
        self.num_params = config.levels  # one logit map per level

    def distribution(self, params: Tensor) -> dist.TorchDistribution:
        logits = params.movedim(-len(self.data_shape) - 1, -1)  # (..., L, *data) -> (..., *data, L)
        return LevelCategorical(logits).to_event(len(self.data_shape))

    def validate(self, x: Tensor) -> None:
        check_levels(x, self.config.levels, "categorical")
