"""Datasets: each reader returns its rows and targets (a :class:`Source`); :func:`make_dataset` turns them into
one :class:`Dataset` (see :mod:`pyro_vae.data.dataset` for the batch convention), batched through torch's
``DataLoader``: in memory (:class:`MemoryData`, vectors or images) or streamed from the files
(:class:`~pyro_vae.data.streaming.StreamData`)."""

from ..registry import DATASETS
from . import digits, idx  # noqa: F401  (register the loaders)
from . import toy  # noqa: F401  (2-D toy manifolds: vectors, not images)
from . import array, image_folder, python, table  # noqa: F401  (your own data: .npy/.npz, image folders, CSV/TSV)
from .base import DataConfigBase, FileDataConfig
from .dataset import Dataset, RowReader
from .make import Source, make_dataset
from .memory import ImageData, MemoryData
from .standardize import Standardizer
from .streaming import StreamData


def load_data(config, seed: int, data=None) -> Dataset:
    """Load the dataset named by ``config.type`` (a config from the DATASETS registry); ``data``: the
    Python objects of a ``data.type: python`` run (forms in :mod:`pyro_vae.data.python`)."""
    if config.type == "python":
        return python.from_python(data, config, seed)
    return DATASETS.build(config).load(seed)


__all__ = ["DATASETS", "DataConfigBase", "Dataset", "FileDataConfig", "ImageData", "MemoryData", "RowReader",
           "Source", "Standardizer", "StreamData", "load_data", "make_dataset"]
