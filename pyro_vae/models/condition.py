"""The condition c of a conditional model: the one-hot label, a covariate vector, or the visible quadrants of x.

:class:`Condition` computes c = c(x, y) and restricts p(x|z,c) to the target (with quadrants, the hidden
pixels); :func:`build_condition` makes one from a model config with ``condition``, ``visible`` and
``covariate_dim`` (the CVAE's and the deterministic baseline's).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import pyro.distributions as dist
import torch
from pyro.infer.util import is_validation_enabled
from torch import Tensor, nn

from ..data.quadrants import visible_quadrants
from ..errors import ConfigError, DataError


class Condition(nn.Module):
    """c as a function of (x, y): the one-hot label, the covariate vector y itself, or the visible quadrants of x.

    ``visible`` (quadrants only) is a boolean mask of the data shape; the pixels it marks are the
    condition and are left out of the likelihood.
    """

    def __init__(self, kind: str, data_shape: Tuple[int, ...], num_classes: int, visible: int = 2,
                 covariate_dim: int = 0) -> None:
        super().__init__()
        self.kind, self.data_shape, self.num_classes = kind, tuple(data_shape), num_classes
        mask = visible_quadrants(self.data_shape, visible) if kind == "quadrants" else None
        self.register_buffer("visible", mask, persistent=False)
        self.register_buffer("anchor", torch.zeros(0), persistent=False)  # follows the model's device
        self.dim = int(mask.sum()) if mask is not None else covariate_dim if kind == "covariates" else num_classes
        if kind == "covariates" and covariate_dim < 1:
            raise ConfigError("model.condition: covariates needs a dataset with covariates (their width fills in "
                              "model.covariate_dim); this one has none")

    @property
    def visible_dims(self) -> int:
        """How many data dimensions are the condition, not the target (the visible pixels; 0 but for quadrants)."""
        return 0 if self.visible is None else int(self.visible.sum())

    def labels(self, y: Tensor) -> Tensor:
        """Integer labels ``(B,)`` (or one-hot ``(B, K)``) → one-hot ``(B, K)``; anything else is a DataError."""
        k = self.num_classes
        if y.dim() == 2 and y.shape[-1] == k and y.is_floating_point():
            return y
        if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
            raise DataError(f"condition: expected integer labels of shape (B,) or one-hot (B, {k}), "
                            f"got {y.dtype} of shape {tuple(y.shape)}")
        if is_validation_enabled():  # reads the labels (a host sync): first step and evaluation, not the hot loop
            bad = y[(y < 0) | (y >= k)]
            if bad.numel():
                raise DataError(f"label {int(bad[0])} is outside the classes 0..{k - 1}")
        return torch.zeros(*y.shape, k, device=y.device).scatter_(-1, y.unsqueeze(-1), 1.0)

    def covariates(self, y: Optional[Tensor]) -> Tensor:
        """Covariates ``(B, C)`` as floats; missing or of another width is a DataError."""
        if y is None:
            raise DataError(f"a covariate-conditional model needs the covariates c of width {self.dim} "
                            "(pyro-vae sample --condition c1,c2,...)")
        if y.dim() != 2 or y.shape[-1] != self.dim:
            raise DataError(f"condition: expected covariates of shape (B, {self.dim}), got {tuple(y.shape)}")
        return y.to(self.anchor.dtype)

    def forward(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """c of shape ``(B, dim)``; without data: balanced labels 0..K-1, or blank visible quadrants
        (covariates are always given)."""
        if x is not None and tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"x: expected shape (B, {', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}")
        if self.kind == "covariates":
            c = self.covariates(y)
            if x is not None and c.shape[0] != x.shape[0]:
                raise DataError(f"condition: {c.shape[0]} covariate rows for {x.shape[0]} datapoints")
            return c
        if self.visible is not None:
            if x is None:
                return torch.zeros(num_samples, self.dim, device=self.anchor.device)
            return x[:, self.visible]
        if y is None:
            if x is not None:
                raise DataError("a label-conditional model needs the labels y with x")
            y = torch.arange(num_samples, device=self.anchor.device) % self.num_classes
        c = self.labels(y)
        if x is not None and c.shape[0] != x.shape[0]:
            raise DataError(f"condition: {c.shape[0]} labels for {x.shape[0]} images")
        return c

    def observed(self, d: dist.TorchDistribution) -> dist.TorchDistribution:
        """p(x|z,c) restricted to the target: visible pixels are masked out of log p (their log-prob is 0)."""
        if self.visible is None:
            return d
        return d.base_dist.mask(~self.visible).to_event(d.reinterpreted_batch_ndims)

    def paste(self, mean: Tensor, x: Optional[Tensor]) -> Tensor:
        """``mean`` with the visible pixels of ``x`` pasted in (a completion); ``mean`` itself for labels."""
        if self.visible is None or x is None:
            return mean
        return torch.where(self.visible, x, mean)


def build_condition(config: Any, data_shape: Tuple[int, ...], num_classes: int) -> Condition:
    """The :class:`Condition` named by ``config.condition`` (with ``config.visible`` and ``config.covariate_dim``)."""
    return Condition(config.condition, data_shape, num_classes, config.visible, config.covariate_dim)
