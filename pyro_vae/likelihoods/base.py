"""The likelihood interface: a module that scores (or samples) the ``x`` site given decoder output."""

from __future__ import annotations

from typing import Optional, Tuple

import pyro
from pyro.distributions import TorchDistribution
from torch import Tensor, nn


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
        if params.shape[dim] == 1:  # a view whose backward is free (unbind's backward stacks a copy)
            return (params.squeeze(dim),)
        return params.unbind(dim)

    def distribution(self, params: Tensor) -> TorchDistribution:
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """E[x|z], for pictures."""
        return self.distribution(params).mean

    def validate(self, x: Tensor) -> None:
        """Raise :class:`~pyro_vae.errors.DataError` if ``x`` is outside this likelihood's support."""

    def forward(self, params: Tensor, x: Optional[Tensor] = None) -> Tensor:
        """Sample site ``x``: observed when ``x`` is given, else drawn."""
        return pyro.sample("x", self.distribution(params), obs=x)
