"""``data.type: array``: a NumPy ``.npy`` file or ``.npz`` archive of datapoints (vectors or images),
with optional labels and covariates; a large ``.npy`` is memory-mapped and streamed."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..config.schema import opt
from ..errors import DataError
from ..registry import DATASETS
from .base import FileDataConfig
from .checks import check_finite, check_labels
from .dataset import Dataset
from .make import Source, make_dataset
from .streaming import NpyRows


@dataclass
class ArrayConfig(FileDataConfig):
    type: str = "array"
    x_key: str = opt("x", "name of the data array in an .npz (ignored for a .npy)")
    label_key: Optional[str] = opt(None, "integer class labels: an array name in the .npz, or, beside a .npy, "
                                         "a .npy file (relative to path's folder)")
    covariate_key: Optional[str] = opt(None, "covariates (N, C) carried as y: an array name in the .npz, or a "
                                             ".npy file beside a .npy")


def require_path(config: FileDataConfig, kind: str) -> Path:
    """``data.path`` as an existing file or folder; a DataError names it otherwise."""
    if not config.path:
        raise DataError(f"data.path: not set (expected {kind})")
    path = Path(config.path).expanduser()
    if not path.exists():
        raise DataError(f"data.path: {str(path)!r} does not exist (expected {kind})")
    return path


BROKEN_ARCHIVE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)  # how NumPy fails on a cut file


def numeric(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` in native byte order if its dtype holds numbers (bool, integer or float); a DataError naming
    ``where`` otherwise."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: holds {array.dtype} values; expected numbers (bool, integer or float)")
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def check_shape(shape: Tuple[int, ...], where: str) -> None:
    """A DataError naming ``where`` unless ``shape`` is ``(N, D)`` vectors or ``(N, [C,] H, W)`` images with
    N >= 1 and every datapoint dimension >= 1."""
    shape = tuple(int(d) for d in shape)
    if not 2 <= len(shape) <= 4:
        raise DataError(f"{where}: data of shape {shape}; expected (N, D) vectors or (N, [C,] H, W) images")
    if shape[0] == 0:
        raise DataError(f"{where}: data of shape {shape} holds no datapoints; expected N >= 2 rows")
    if 0 in shape[1:]:
        raise DataError(f"{where}: datapoints of shape {shape[1:]} hold no values; expected every dimension >= 1")


def max_value(dtype: np.dtype) -> float:
    """What ``scale: true`` divides by: the integer dtype's maximum (255 for uint8), 1 for floats."""
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0


def _first_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def side_arrays(config: ArrayConfig, path: Path) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Labels and covariates beside a ``.npy`` (``label_key``/``covariate_key`` are .npy files)."""
    out = []
    for option, key in (("label_key", config.label_key), ("covariate_key", config.covariate_key)):
        if key is None:
            out.append(None)
            continue
        file = (path.parent / key).expanduser()
        if not file.is_file():
            raise DataError(f"data.{option}: {str(file)!r} does not exist (beside a .npy, {option} names a .npy file)")
        try:
            out.append(numeric(np.load(file, allow_pickle=False), str(file)))
        except BROKEN_ARCHIVE as e:
            raise DataError(f"{file}: cannot read as a .npy array ({_first_line(e)})") from None
    return out[0], out[1]


def npz_arrays(config: ArrayConfig, path: Path) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """x, labels and covariates from an ``.npz`` archive; a wrong key lists the keys present."""
    try:
        archive = np.load(path, allow_pickle=False)
    except BROKEN_ARCHIVE as e:
        raise DataError(f"{path}: cannot read as an .npz archive ({_first_line(e)}); expected a whole "
                        "np.savez file") from None
    with archive:
        keys = list(archive.files)
        arrays = []
        for option, key in (("x_key", config.x_key), ("label_key", config.label_key),
                            ("covariate_key", config.covariate_key)):
            if key is None:
                arrays.append(None)
                continue
            if key not in keys:
                raise DataError(f"{path}: no array {key!r} (data.{option}); the archive holds: {', '.join(keys)}")
            try:
                arrays.append(numeric(archive[key], f"{path}[{key!r}]"))
            except BROKEN_ARCHIVE as e:  # object arrays need pickle; a member cut short
                raise DataError(f"{path}[{key!r}]: cannot read ({_first_line(e)}); expected a whole array of "
                                "numbers") from None
    return arrays[0], arrays[1], arrays[2]


def side_tensors(labels: Optional[np.ndarray], covariates: Optional[np.ndarray], n: int,
                 where: str) -> Tuple[Optional[Tensor], int, Optional[Tensor]]:
    """Checked ``(labels (n,) long or None, number of classes, covariates (n, C) float or None)``."""
    y, num_classes, cov = None, 0, None
    if labels is not None:
        if labels.shape != (n,):
            raise DataError(f"{where}: labels of shape {labels.shape}; expected ({n},), one per datapoint")
        yt = torch.from_numpy(labels.astype(np.float64))
        num_classes = check_labels(yt, f"{where} labels")
        y = yt.long()
    if covariates is not None:
        if covariates.ndim == 1:
            covariates = covariates[:, None]
        if covariates.ndim != 2 or covariates.shape[0] != n:
            raise DataError(f"{where}: covariates of shape {covariates.shape}; expected ({n}, C), one row per datapoint")
        cov = torch.from_numpy(covariates.astype(np.float32))
        check_finite(cov, f"{where} covariates")
    return y, num_classes, cov


def array_source(name: str, x: np.ndarray, labels: Optional[np.ndarray], covariates: Optional[np.ndarray],
                 config: FileDataConfig, where: str = "", split=None) -> Source:
    """Checked rows and targets from NumPy arrays (shared by the array, table and Python readers);
    ``split``: given ``(train rows, test rows)`` instead of the seeded ``test_fraction`` split."""
    where = where or name
    check_shape(x.shape, where)
    x = numeric(x, where)
    xt = torch.from_numpy(np.ascontiguousarray(x)).float() if x.dtype != np.float32 else torch.from_numpy(np.array(x))
    check_finite(xt, where)
    y, num_classes, cov = side_tensors(labels, covariates, x.shape[0], where)
    return Source(name, x=xt, labels=y, covariates=cov, num_classes=num_classes, max_value=max_value(x.dtype),
                  standardize=config.standardize, split=split, where=where)


def npy_source(name: str, path: Path, labels: Optional[np.ndarray], covariates: Optional[np.ndarray],
               config: FileDataConfig) -> Source:
    """A memory-mapped ``.npy`` (read into memory or streamed, as ``data.in_memory`` says) and its targets."""
    reader = NpyRows(path)
    check_shape((reader.rows, *reader.shape), str(path))
    numeric(np.empty(0, reader.dtype), str(path))
    y, num_classes, cov = side_tensors(labels, covariates, reader.rows, str(path))
    return Source(name, reader=reader, labels=y, covariates=cov, num_classes=num_classes,
                  max_value=max_value(reader.dtype), standardize=config.standardize, where=str(path))


@DATASETS.register("array", ArrayConfig)
class ArrayData:
    """Datapoints from a .npy/.npz file (vectors (N, D) or images (N, [C,] H, W)), optional labels/covariates."""

    def __init__(self, config: ArrayConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        c = self.config
        path = require_path(c, "a .npy file or .npz archive")
        name = path.stem
        if path.suffix == ".npz":
            if c.in_memory is False:
                raise DataError(f"data.in_memory: false needs a .npy file ({path} is an .npz archive, which "
                                "cannot be memory-mapped; save x with np.save)")
            x, labels, cov = npz_arrays(c, path)
            return make_dataset(array_source(name, x, labels, cov, c, where=f"{path}[{c.x_key!r}]"), c, seed)
        if path.suffix != ".npy":
            raise DataError(f"data.path: {str(path)!r} is not a .npy or .npz file")
        labels, cov = side_arrays(c, path)
        return make_dataset(npy_source(name, path, labels, cov, c), c, seed)
