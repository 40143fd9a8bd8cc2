"""The seeded train/test split (``test_fraction``, ``limit``) and the validation split cut from training rows."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..errors import DataError
from .base import DataConfigBase


def split_order(n: int, config: DataConfigBase, seed: int, name: str,
                noun: str = "datapoints") -> Tuple[Tensor, Tensor, torch.Generator]:
    """Train and test row indices: a seeded permutation of ``n`` rows, cut to ``limit``, the first
    ``test_fraction`` held out. Returns the generator too (its later draws binarize the test split)."""
    if n == 0:
        raise DataError(f"dataset {name!r} is empty")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if config.limit is not None:
        order = order[: config.limit]
    n_test = max(1, int(round(config.test_fraction * order.shape[0])))
    if n_test >= order.shape[0]:
        raise DataError(f"dataset {name!r}: {order.shape[0]} {noun} leave none for training "
                        f"with test_fraction={config.test_fraction}")
    train, test = order[n_test:], order[:n_test]
    if config.validation is not None:
        train, test = validation_split(train, config, name)
    return train, test, gen


def validation_split(train: Tensor, config: DataConfigBase, name: str) -> Tuple[Tensor, Tensor]:
    """``data.validation``: the first ``validation`` fraction of the (shuffled) training rows become the held-out
    rows, the test split is not read: ``(train rows, validation rows)``."""
    n_val = max(1, int(round(config.validation * train.shape[0])))
    if n_val >= train.shape[0]:
        raise DataError(f"dataset {name!r}: {train.shape[0]} training points leave none for training with "
                        f"validation={config.validation}")
    return train[n_val:], train[:n_val]
