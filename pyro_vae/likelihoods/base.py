"""The likelihood interface: a module from decoder output to the distribution of the ``x`` site."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..errors import DataError


def level_mismatch(x: Tensor, levels: int, name: str) -> Optional[str]:
    """Why ``x`` is not in [0, 1] on the grid k/(levels − 1) (a message for ``name``'s likelihood); None when it is."""
    if x.numel() == 0:
        return None
    steps = levels - 1
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0 or not torch.isfinite(x).all():
        return f"{name} likelihood needs pixel values in [0, 1], got range [{lo:g}, {hi:g}] (set data.scale: true)"
    off_grid = float((x * steps - (x * steps).round()).abs().max())
    if off_grid > 1e-3:
        return (f"{name} likelihood needs values on the grid k/{steps} ({levels} levels); the data is off it by up "
                f"to {off_grid / steps:g} (set model.likelihood.levels)")
    return None


def on_grid(x: Tensor, levels: int) -> bool:
    """``x`` lies in [0, 1] on the grid k/(L−1), k = 0, …, L−1."""
    return level_mismatch(x, levels, "") is None


def check_levels(x: Tensor, levels: int, name: str) -> None:
    """Raise :class:`~pyro_vae.errors.DataError` unless ``x`` lies in [0, 1] on the grid k/(levels − 1)."""
    mismatch = level_mismatch(x, levels, name)
    if mismatch is not None:
        raise DataError(mismatch)


class Likelihood(nn.Module):
    """p(x|z): the decoder emits ``num_params`` maps of the data shape; this turns them into a distribution.

    ``params`` has shape ``(..., num_params, *data_shape)``; the distribution has
    ``event_shape == data_shape`` (``to_event`` over all data dims) and batch shape ``params.shape[:-len(data_shape)-1]``.
    """

    num_params: int = 1
    #: L when p(x|z) is a probability mass on the grey levels k/(L−1), k = 0, …, L−1, of each dimension (then
    #: −log p(x) is a code length and evaluation reports bits/dim); None for a density over continuous values
    levels: Optional[int] = None

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

    def encoder_shape(self) -> Tuple[int, ...]:
        """Shape of what the encoder reads of a datapoint (:meth:`encoder_input`); the data's own here."""
        return self.data_shape

    def encoder_input(self, x: Tensor) -> Tensor:
        """What the encoder reads of ``x``: ``x`` itself here (a table's likelihood adds one-hots and a mask)."""
        return x

    def forward(self, params: Tensor) -> TorchDistribution:
        """``p(params)``: the distribution of ``x`` (:meth:`distribution`); the model's site is
        ``pyro.sample("x", likelihood.distribution(params), obs=x)``."""
        return self.distribution(params)
