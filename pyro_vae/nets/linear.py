"""Linear encoder and decoder: with a Gaussian likelihood and N(0, I) prior this is probabilistic PCA.

The decoder is x = Wz + b (+ σε from the likelihood), so log p(x) = log N(x; b, WWᵀ + σ²I) is known in
closed form (:func:`pyro_vae.evaluation.loglik.linear_gaussian_log_marginal`): the reference model for
checking estimators of log p(x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from torch import Tensor, nn

from ..registry import NETWORKS
from .base import Encoder, GaussianHead, Network, with_condition


@dataclass
class LinearConfig:
    type: str = "linear"


class LinearEncoder(Encoder):
    """``x ↦ (μ, σ)`` = (Ax + a, exp(½(Cx + c))): a Gaussian head on the flattened input (h = x itself)."""

    def __init__(self, config: LinearConfig, data_shape: Tuple[int, ...], out_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.data_dims = len(data_shape)
        self.feature_dim = math.prod(data_shape) + cond_dim
        self.head = GaussianHead(self.feature_dim, out_dim)

    def features(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return with_condition(x.flatten(-self.data_dims), c)


class LinearDecoder(nn.Module):
    """``z ↦ Wz + b`` reshaped to ``(num_params, *data_shape)`` (``.weight`` W, ``.bias`` b)."""

    def __init__(self, config: LinearConfig, latent_dim: int, data_shape: Tuple[int, ...], num_params: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        self.out_shape = (num_params, *data_shape)
        self.linear = nn.Linear(latent_dim + cond_dim, math.prod(self.out_shape))

    @property
    def weight(self) -> Tensor:
        return self.linear.weight

    @property
    def bias(self) -> Tensor:
        return self.linear.bias

    def forward(self, z: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return self.linear(with_condition(z, c)).unflatten(-1, self.out_shape)


@NETWORKS.register("linear", LinearConfig)
class Linear(Network):
    """Linear encoder and linear decoder x = Wz + b (with a Gaussian likelihood: probabilistic PCA)."""

    encoder = LinearEncoder
    decoder = LinearDecoder
