"""A small convolutional encoder/decoder pair for images whose sides divide by 4 (8x8, 28x28)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Literal, Optional, Tuple

from torch import Tensor, nn

from ..config.schema import all_positive, opt, positive
from ..errors import ConfigError
from ..registry import NETWORKS
from .base import ACTIVATIONS, Encoder, GaussianHead, Network, with_condition


@dataclass
class ConvConfig:
    type: str = "conv"
    channels: List[int] = opt([32, 64], "channels of the two stride-2 conv layers",
                              lambda c: len(c) == 2 and all_positive(c), "two integers >= 1, e.g. [32, 64]")
    hidden_dim: int = opt(256, "width of the dense layer between conv stack and heads", positive, "an integer >= 1")
    activation: Literal["relu", "tanh", "elu", "softplus", "gelu"] = opt("relu", "nonlinearity")


def _check(config: ConvConfig, data_shape: Tuple[int, ...]) -> Tuple[int, int, int]:
    if len(data_shape) != 3 or data_shape[1] % 4 or data_shape[2] % 4:
        raise ConfigError(f"model.network: conv needs (C, H, W) images with H, W divisible by 4, got {data_shape}")
    if len(config.channels) != 2:
        raise ConfigError(f"model.network.channels: conv takes exactly 2 channel counts, got {config.channels}")
    return data_shape[0], data_shape[1] // 4, data_shape[2] // 4


def _flat(t: Tensor, event_dims: int) -> Tuple[Tensor, Tuple[int, ...]]:
    batch = t.shape[:-event_dims]
    return t.reshape(-1, *t.shape[-event_dims:]), batch


class ConvEncoder(Encoder):
    """``x ↦ (μ, σ)``: two stride-2 convolutions, a dense layer, Gaussian head."""

    def __init__(self, config: ConvConfig, data_shape: Tuple[int, ...], out_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        c_in, h, w = _check(config, data_shape)
        c1, c2 = config.channels
        act = ACTIVATIONS[config.activation]
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c1, 3, stride=2, padding=1), act(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), act(), nn.Flatten(),
        )
        self.dense = nn.Sequential(nn.Linear(c2 * h * w + cond_dim, config.hidden_dim), act())
        self.head = GaussianHead(config.hidden_dim, out_dim)
        self.feature_dim = config.hidden_dim

    def features(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        flat, batch = _flat(x, 3)
        h = self.conv(flat).reshape(*batch, -1)
        return self.dense(with_condition(h, c))


class ConvDecoder(nn.Module):
    """``z ↦ params``: dense layers to a ``(C2, H/4, W/4)`` map, two stride-2 transposed convolutions."""

    def __init__(self, config: ConvConfig, latent_dim: int, data_shape: Tuple[int, ...], num_params: int,
                 cond_dim: int = 0) -> None:
        super().__init__()
        c_out, h, w = _check(config, data_shape)
        c1, c2 = config.channels
        act = ACTIVATIONS[config.activation]
        self.out_shape = (num_params, *data_shape)
        self.grid = (c2, h, w)
        self.dense = nn.Sequential(
            nn.Linear(latent_dim + cond_dim, config.hidden_dim), act(),
            nn.Linear(config.hidden_dim, math.prod(self.grid)), act(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), act(),
            nn.ConvTranspose2d(c1, num_params * c_out, 4, stride=2, padding=1),
        )

    def forward(self, z: Tensor, c: Optional[Tensor] = None) -> Tensor:
        h = self.dense(with_condition(z, c))
        flat, batch = _flat(h, 1)
        out = self.deconv(flat.reshape(-1, *self.grid))
        return out.reshape(*batch, *self.out_shape)


@NETWORKS.register("conv", ConvConfig)
class Conv(Network):
    """Two-layer convolutional encoder and transposed-convolution decoder (image sides divisible by 4)."""

    encoder = ConvEncoder
    decoder = ConvDecoder

    @classmethod
    def hidden_activation(cls, config: object) -> str:
        return config.activation
