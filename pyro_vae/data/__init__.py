"""Datasets: each reader returns its rows and targets (a :class:`Source`); :func:`make_dataset` turns them into
one :class:`~pyro_vae.data.rowdata.RowData` (the :class:`Dataset` protocol; see :mod:`pyro_vae.data.dataset` for
the batch convention), its splits held in memory or streamed from the files, batched through torch's
``DataLoader`` either way."""

from ..registry import DATASETS
from . import digits, idx  # noqa: F401  (register the loaders)
from . import toy  # noqa: F401  (2-D toy manifolds: vectors, not images)
from . import array, image_folder, python, table  # noqa: F401  (your own data: .npy/.npz, image folders, CSV/TSV)
from .base import DataConfigBase, FileDataConfig
from .dataset import Dataset, RowReader
from .make import Source, make_dataset
from .rowdata import ImageData, MemoryData, RowData
from .standardize import Standardizer


def load_data(config, seed: int, data=None) -> Dataset:
    """Load the dataset named by ``config.type`` (a config from the DATASETS registry); ``data``: the
    Python objects of a ``data.type: python`` run (forms in :mod:`pyro_vae.data.python`)."""
    if config.type == "python":
        return python.from_python(data, config, seed)
    return DATASETS.build(config).load(seed)


__all__ = ["DATASETS", "DataConfigBase", "Dataset", "FileDataConfig", "ImageData", "MemoryData", "RowData",
           "RowReader", "Source", "Standardizer", "load_data", "make_dataset"]
