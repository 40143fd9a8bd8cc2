"""Shared pieces of encoders and decoders: activations, the Gaussian head, leading-dim handling.

Encoders map ``x`` of shape ``(B, *data_shape)`` (and an optional condition ``c`` of shape
``(B, cond_dim)``) to ``(loc, scale)`` of shape ``(B, out_dim)``; an :class:`Encoder` also exposes the
features h(x, c) its Gaussian head reads (a richer guide family adds its own heads on h). Decoders map ``z`` of shape
``(..., B, latent_dim)`` to likelihood parameters of shape ``(..., B, num_params, *data_shape)``:
any leading (particle) dims pass through.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus, "gelu": nn.GELU}
LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0


def mlp(dims: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers ``dims[0] → … → dims[-1]``, each followed by the activation."""
    layers: List[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Linear mean and log-variance heads: ``σ = exp(½·clamp(logvar))`` stays finite and positive."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.loc = nn.Linear(in_dim, out_dim)
        self.logvar = nn.Linear(in_dim, out_dim)

    def forward(self, h: Tensor) -> Tuple[Tensor, Tensor]:
        logvar = self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)
        return self.loc(h), torch.exp(0.5 * logvar)


class Encoder(nn.Module):
    """``x ↦ (μ, σ) = head(h(x, c))``: subclasses set ``head`` (a :class:`GaussianHead`) and ``feature_dim``
    (the width of h) and give :meth:`features`; guide families beyond the diagonal Gaussian read h."""

    head: GaussianHead
    feature_dim: int

    def features(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        """h(x, c), shape ``(B, feature_dim)``: what the Gaussian head reads."""
        raise NotImplementedError

    def forward(self, x: Tensor, c: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        return self.head(self.features(x, c))


class Network:
    """A network family: ``encoder(config, data_shape, latent_dim, cond_dim)`` and ``decoder(config, latent_dim,
    data_shape, num_params, cond_dim)`` (registered under ``model.network.type``; a family may also be any class
    with those two, without this base)."""

    encoder: type
    decoder: type

    @classmethod
    def hidden_activation(cls, config: object) -> str:
        """The nonlinearity the family's hidden layers use under ``config`` (a model's extra MLPs, e.g. a
        classifier q(y|x), use it too); "relu" for a family without one."""
        return "relu"


def hidden_activation(network: type, config: object) -> str:
    """:meth:`Network.hidden_activation` of the registered family ``network`` ("relu" for a plain class)."""
    return network.hidden_activation(config) if issubclass(network, Network) else "relu"


class MappedInput(Encoder):
    """An encoder reading ``f(x)`` instead of ``x`` (e.g. a table's one-hot cells and observation mask)."""

    def __init__(self, f: Callable[[Tensor], Tensor], inner: Encoder) -> None:
        super().__init__()
        self.f, self.inner, self.feature_dim = f, inner, inner.feature_dim

    @property
    def head(self) -> GaussianHead:  # type: ignore[override]
        return self.inner.head

    def features(self, x: Tensor, c: Optional[Tensor] = None) -> Tensor:
        return self.inner.features(self.f(x), c)


def with_condition(h: Tensor, c: Optional[Tensor]) -> Tensor:
    """Concatenate condition ``c`` (broadcast over ``h``'s leading dims) to features ``h``."""
    if c is None:
        return h
    c = c.to(h.dtype).expand(*h.shape[:-1], c.shape[-1])
    return torch.cat([h, c], dim=-1)


class ConvFeatures(nn.Module):
    """``(…, C, H, W) ↦ (…, F)``: 3×3 convolutions of stride 2 (each halves H and W, rounding up), flattened."""

    def __init__(self, data_shape: Sequence[int], channels: Sequence[int], activation: str) -> None:
        super().__init__()
        if len(data_shape) != 3:
            raise ConfigError(f"model.classifier_channels: convolutional features need (C, H, W) images, got data "
                              f"of shape {tuple(data_shape)} (leave classifier_channels empty for an MLP)")
        layers: List[nn.Module] = []
        c, h, w = data_shape
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), ACTIVATIONS[activation]()]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.conv, self.out_dim = nn.Sequential(*layers, nn.Flatten()), c * h * w

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[:-3]
        return self.conv(x.reshape(-1, *x.shape[-3:])).reshape(*batch, self.out_dim)


def mlp_classifier(data_shape: Sequence[int], hidden_dims: Sequence[int], num_classes: int, activation: str,
                   channels: Sequence[int] = ()) -> nn.Sequential:
    """Logits ``(B, num_classes)`` of a datapoint ``(B, *data_shape)``: flatten (or, with ``channels``, stride-2
    convolutions first), hidden layers, linear output."""
    if channels:
        features: nn.Module = ConvFeatures(data_shape, channels, activation)
        width = features.out_dim
    else:
        features, width = nn.Flatten(-len(data_shape)), math.prod(data_shape)
    dims = [width, *hidden_dims]
    return nn.Sequential(features, mlp(dims, activation), nn.Linear(dims[-1], num_classes))
