"""The 8x8 handwritten digits bundled with scikit-learn: the embedded, offline default dataset."""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from ..registry import DATASETS
from .base import DataConfigBase
from .dataset import Dataset
from .make import Source, make_dataset


@dataclass
class DigitsConfig(DataConfigBase):
    type: str = "digits"


@DATASETS.register("digits", DigitsConfig)
class Digits:
    """1,797 8x8 grey-level digits (values 0..16) shipped inside scikit-learn; works offline."""

    def __init__(self, config: DigitsConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        images, labels = read_digits()
        source = Source("digits", x=images, labels=labels, num_classes=10, max_value=16.0)
        return make_dataset(source, self.config, seed)


def read_digits() -> Tuple[torch.Tensor, torch.Tensor]:
    """``(images (1797, 8, 8) float32, labels (1797,) long)``, read from scikit-learn's bundled
    ``datasets/data/digits.csv.gz`` (64 pixel columns, then the label) as ``sklearn.datasets.load_digits`` reads
    it, without importing scikit-learn (seconds); through ``load_digits`` where the file is not found."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / "datasets" / "data" / "digits.csv.gz" if folders else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (torch.as_tensor(digits.images, dtype=torch.float32),
                torch.as_tensor(digits.target, dtype=torch.long))
    with gzip.open(path, "rt") as f:
        table = torch.as_tensor(np.loadtxt(f, delimiter=","))
    return table[:, :-1].reshape(-1, 8, 8).float(), table[:, -1].long()
