"""Datasets: each loader returns an :class:`ImageData` (train/test tensors, labels, binarization)."""

from ..registry import DATASETS
from . import digits, idx  # noqa: F401  (register the loaders)
from . import toy  # noqa: F401  (2-D toy manifolds: vectors, not images)
from .base import DataConfigBase, ImageData, make_image_data


def load_data(config, seed: int) -> ImageData:
    """Load the dataset named by ``config.type`` (a config from the DATASETS registry)."""
    return DATASETS.build(config).load(seed)


__all__ = ["DATASETS", "DataConfigBase", "ImageData", "load_data", "make_image_data"]
