"""Checks every reader applies to the values it read: finite datapoints, integer class labels."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError


def check_finite(x: Tensor, what: str) -> None:
    """DataError naming ``what`` and the first datapoint holding NaN or ±inf."""
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1) if x.dim() > 1 else ~torch.isfinite(x)
    if bool(bad.any()):
        raise DataError(f"{what}: row {int(bad.nonzero()[0, 0])} holds NaN or inf values "
                        f"({int(bad.sum())} rows in all); expected finite numbers")


def check_labels(y: Tensor, what: str) -> int:
    """Integer class labels 0..K−1 with at least two classes; returns K. A DataError names ``what``."""
    if y.dtype.is_floating_point:
        if not torch.isfinite(y).all() or not bool((y == y.round()).all()):
            raise DataError(f"{what}: labels must be integers 0..K-1, got non-integer values")
    y = y.long()
    if y.numel() == 0:
        raise DataError(f"{what}: no labels")
    if int(y.min()) < 0:
        raise DataError(f"{what}: label {int(y.min())} is negative; expected integers 0..K-1")
    k = int(y.max()) + 1
    if len(torch.unique(y)) < 2:
        raise DataError(f"{what}: all labels are {int(y[0])} (one class); expected at least two classes, "
                        "or leave the label out")
    return k
