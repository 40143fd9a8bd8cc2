"""Datasets: each loader returns a :class:`Dataset` (see :mod:`pyro_vae.data.base` for the batch convention):
in-memory :class:`ImageData`, or :class:`~pyro_vae.data.streaming.StreamData` read through a DataLoader."""

from ..registry import DATASETS
from . import digits, idx  # noqa: F401  (register the loaders)
from . import toy  # noqa: F401  (2-D toy manifolds: vectors, not images)
from . import array, image_folder, python, table  # noqa: F401  (your own data: .npy/.npz, image folders, CSV/TSV)
from .base import DataConfigBase, Dataset, ImageData, Standardizer, make_image_data
from .streaming import StreamData


def load_data(config, seed: int, data=None) -> Dataset:
    """Load the dataset named by ``config.type`` (a config from the DATASETS registry); ``data``: the
    Python objects of a ``data.type: python`` run (forms in :mod:`pyro_vae.data.python`)."""
    if config.type == "python":
        return python.from_python(data, config, seed)
    return DATASETS.build(config).load(seed)


__all__ = ["DATASETS", "DataConfigBase", "Dataset", "ImageData", "Standardizer", "StreamData", "load_data",
           "make_image_data"]
