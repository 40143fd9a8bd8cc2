"""The likelihood interface: a module from decoder output to the distribution of the ``x`` site."""

from __future__ import annotations

from typing import Tuple

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..errors import DataError


def check_levels(x: Tensor, levels: int, name: str) -> None:
    """Raise :class:`~pyro_vae.errors.DataError` unless ``x`` lies in [0, 1] on the grid k/(levels − 1)."""
    steps = levels - 1
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0 or not torch.isfinite(x).all():
        raise DataError(f"{name} likelihood needs pixel values in [0, 1], got range [{lo:g}, {hi:g}] "
                        "(set data.scale: true)")
    off_grid = float((x * steps - (x * steps).round()).abs().max())
    if off_grid > 1e-3:
        raise DataError(f"{name} likelihood needs values on the grid k/{steps} ({levels} levels); the data is "
                        f"off it by up to {off_grid / steps:g} (set model.likelihood.levels)")


class Likelihood(nn.Module):
    """p(x|z): the decoder emits ``num_params`` maps of the data shape; this turns them into a distribution.

    ``params`` has shape ``(..., num_params, *data_shape)``; the distribution has
    ``event_shape == data_shape`` (``to_event`` over all data dims) and batch shape ``params.shape[:-len(data_shape)-1]``.
    """

    num_params: int = 1

    def __init__(self, data_shape: Tuple[int, ...]) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)

    def split(self, params: Tensor) -> Tuple[Tensor, ...]:
        """The ``num_params`` parameter maps, each of shape ``(..., *data_shape)`` (views of ``params``)."""
        dim = -len(self.data_shape) - 1
        if params.shape[dim] == 1:
            return (params.squeeze(dim),)
        return params.unbind(dim)

    def distribution(self, params: Tensor) -> TorchDistribution:
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """E[x|z], for pictures."""
        return self.distribution(params).mean

    def validate(self, x: Tensor) -> None:
        """Raise :class:`~pyro_vae.errors.DataError` if ``x`` is outside this likelihood's support."""

    def forward(self, params: Tensor) -> TorchDistribution:
        """``p(params)``: the distribution of ``x`` (:meth:`distribution`); the model's site is
        ``pyro.sample("x", likelihood.distribution(params), obs=x)``."""
        return self.distribution(params)
