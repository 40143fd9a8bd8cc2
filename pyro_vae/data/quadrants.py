"""Quadrant masks for structured output prediction (Sohn et al. 2015; Pyro's CVAE example).

The condition c is 1, 2 or 3 visible quadrants of an image and the target x is the hidden rest.
The visible patterns are Pyro's (``MaskImages`` in its ``examples/cvae/mnist.py``): 1 = bottom-left, 2 = left
half, 3 = all but the bottom-right (the target is then the bottom-right quadrant).
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..errors import ConfigError

HIDDEN_SHADE = 0.5  # grey level that marks hidden pixels in pictures


def visible_quadrants(data_shape: Tuple[int, ...], visible: int) -> Tensor:
    """Boolean mask of ``data_shape`` ``(C, H, W)``, True on the ``visible`` (1, 2 or 3) quadrants shown as c."""
    if len(data_shape) != 3:
        raise ConfigError(f"model.visible: quadrants need (C, H, W) images, got data shape {tuple(data_shape)}")
    if visible not in (1, 2, 3):
        raise ConfigError(f"model.visible: got {visible!r}; expected 1, 2 or 3 visible quadrants")
    _, h, w = data_shape
    top = torch.zeros(h, w, dtype=torch.bool)
    top[: h // 2] = True
    left = torch.zeros(h, w, dtype=torch.bool)
    left[:, : w // 2] = True
    mask = {1: ~top & left, 2: left, 3: top | left}[visible]
    return mask.expand(*data_shape).clone()


def show_hidden(x: Tensor, visible: Tensor, shade: float = HIDDEN_SHADE) -> Tensor:
    """``x`` with its hidden pixels painted grey, for pictures of the model's input."""
    return torch.where(visible, x, torch.full_like(x, shade))
