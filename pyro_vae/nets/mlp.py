"""Fully connected encoder/decoder of any depth and width."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Literal, Optional, Tuple

from torch import Tensor, nn

from ..config.schema import all_positive, opt
from ..registry import NETWORKS
from .base import Encoder, GaussianHead, Network, mlp, with_condition


@dataclass
class MLPConfig:
    type: str = "mlp"
    hidden_dims: List[int] = opt([256, 128], "encoder widths; the decoder mirrors them", all_positive,
                                 "a list of integers >= 1 (widths of the hidden layers)")
    activation: Literal["relu", "tanh", "elu", "softplus", "gelu"] = opt("relu", "nonlinearity")


class MLPEncoder(Encoder):
    """``x ↦ (μ, σ)``: flatten, hidden layers, Gaussian head."""

    def __init__(self, config: MLPConfig, data_shape: Tuple[int, ...], out_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.data_dims = len(data_shape)
        dims = [math.prod(data_shape) + cond_dim, *config.hidden_dims]
        self.body = mlp(dims, config.activation)
        self.head = GaussianHead(dims[-1], out_dim)
        self.feature_dim = dims[-1]

    def features(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return self.body(with_condition(x.flatten(-self.data_dims), c))


class MLPDecoder(nn.Module):
    """``z ↦ params``: hidden layers (mirrored), linear output reshaped to ``(num_params, *data_shape)``."""

    def __init__(self, config: MLPConfig, latent_dim: int, data_shape: Tuple[int, ...], num_params: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        self.out_shape = (num_params, *data_shape)
        dims = [latent_dim + cond_dim, *reversed(config.hidden_dims)]
        self.body = mlp(dims, config.activation)
        self.out = nn.Linear(dims[-1], math.prod(self.out_shape))

    def forward(self, z: Tensor, c: Optional[Tensor] = None) -> Tensor:
        h = self.body(with_condition(z, c))
        return self.out(h).unflatten(-1, self.out_shape)


@NETWORKS.register("mlp", MLPConfig)
class MLP(Network):
    """Multilayer perceptron encoder and mirrored decoder (any depth and width)."""

    encoder = MLPEncoder
    decoder = MLPDecoder

    @classmethod
    def hidden_activation(cls, config: object) -> str:
        return config.activation
