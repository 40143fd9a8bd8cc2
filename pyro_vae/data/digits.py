"""The 8x8 handwritten digits bundled with scikit-learn: the embedded, offline default dataset."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..registry import DATASETS
from .base import DataConfigBase, ImageData, make_image_data


@dataclass
class DigitsConfig(DataConfigBase):
    type: str = "digits"


@DATASETS.register("digits", DigitsConfig)
class Digits:
    """1,797 8x8 grey-level digits (values 0..16) shipped inside scikit-learn; works offline."""

    def __init__(self, config: DigitsConfig) -> None:
        self.config = config

    def load(self, seed: int) -> ImageData:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32)
        labels = torch.as_tensor(digits.target, dtype=torch.long)
        return make_image_data("digits", images, labels, self.config, seed, max_value=16.0)
