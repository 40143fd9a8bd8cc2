"""``data.type: python``: data handed to :func:`pyro_vae.train` (and :func:`~pyro_vae.run.load_run`,
:func:`~pyro_vae.run.resume`) as ``data=...`` instead of read from a file.

Accepted forms of ``data``:

* ``x`` — a tensor or NumPy array ``(N, *shape)``: split into train and test by ``data.test_fraction``
  (seeded by the run's ``seed``);
* ``(train, test)`` — a pair of parts, where each part is ``x``, ``(x, labels)`` or a
  ``torch.utils.data.Dataset``;
* ``{"train": x, "test": x, "labels": y, "test_labels": y, "covariates": c, "test_covariates": c}`` —
  only ``train`` is required; ``labels`` are integers 0..K−1 ``(N,)``, ``covariates`` floats ``(N, C)``
  (carried as y, see :mod:`pyro_vae.data.base`);
* a ``torch.utils.data.Dataset`` — items ``x`` or ``(x, y)`` (y an integer label or a float covariate
  vector); split by ``data.test_fraction``.

A ``torch.utils.data.Dataset`` is read into memory when it fits (``data.in_memory: auto``) and otherwise
streamed through a DataLoader with ``data.num_workers`` workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset as TorchDataset

from ..errors import DataError
from ..registry import DATASETS
from .array import array_source, check_shape
from .base import FileDataConfig
from .dataset import Dataset, RowReader
from .make import Source, make_dataset

KEYS = ("train", "test", "labels", "test_labels", "covariates", "test_covariates")


@dataclass
class PythonDataConfig(FileDataConfig):
    """Options for data given from Python (``path`` is unused)."""

    type: str = "python"


def python_config(given: Any) -> PythonDataConfig:
    """The ``data.type: python`` config of a run given ``data=...``: the options set in ``given`` (those that
    differ from its type's defaults) that apply to Python data (``standardize``, ``test_fraction``, ...) are
    carried over; the others are named in one warning."""
    import dataclasses
    import warnings

    values, default = dataclasses.asdict(given), dataclasses.asdict(type(given)())
    changed = [name for name, value in values.items() if name != "type" and value != default[name]]
    kept = {f.name for f in dataclasses.fields(PythonDataConfig)} - {"path"}  # the data is given, not read
    ignored = [name for name in changed if name not in kept]
    if ignored:
        warnings.warn(f"data.{', data.'.join(ignored)}: ignored with data=... (options of data.type "
                      f"{given.type!r}); the run uses data.type: python", stacklevel=3)
    return PythonDataConfig(**{name: values[name] for name in changed if name in kept})


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        if value.layout != torch.strided:
            raise DataError(f"data[{what!r}]: a {str(value.layout).replace('torch.', '')} tensor; expected a dense "
                            "tensor (x.to_dense())")
        if value.is_meta:
            raise DataError(f"data[{what!r}]: a tensor on the meta device holds no values; expected data on the cpu "
                            "or a GPU")
        value = value.detach().cpu().resolve_conj().resolve_neg()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as e:
        raise DataError(f"data[{what!r}]: cannot make an array of it ({e})") from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"data[{what!r}]: holds {array.dtype} values; expected numbers (a tensor or NumPy array)")
    return array


def _xy(item: Any) -> Tuple[Any, Any]:
    """An item ``x``, ``(x,)`` (e.g. ``TensorDataset(x)``) or ``(x, y)`` as ``(x, y or None)``."""
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return item[0], None
        if len(item) == 2:
            return item[0], item[1]
        raise DataError(f"data: a torch Dataset item of {len(item)} parts; expected x, (x,) or (x, y)")
    return item, None


class TorchRows(RowReader):
    """Rows of a user's ``torch.utils.data.Dataset`` (items ``x`` or ``(x, y)``), rows ``n0..`` of ``parts[1]``
    following those of ``parts[0]`` (a given held-out part)."""

    def __init__(self, *parts: TorchDataset) -> None:
        self.parts = parts
        self.sizes = [len(p) for p in parts]
        x, y = _xy(parts[0][0])
        self.shape = tuple(torch.as_tensor(x).shape)
        if y is not None:  # labels (an integer) or covariates (floats) with each item
            y = torch.as_tensor(y)
            self.target_width = int(np.prod(y.shape)) if y.is_floating_point() else 0

    def __len__(self) -> int:
        return sum(self.sizes)

    def item(self, row: int):
        part = 0
        while row >= self.sizes[part]:
            row, part = row - self.sizes[part], part + 1
        return self.parts[part][row]

    def read(self, rows: np.ndarray):
        items = [_xy(self.item(int(r))) for r in rows]
        for r, (x, _) in zip(rows, items):
            if tuple(torch.as_tensor(x).shape) != self.shape:
                raise DataError(f"data: torch Dataset item {int(r)} has shape {tuple(torch.as_tensor(x).shape)}, item 0 "
                                f"{self.shape}; expected every item of the same shape")
        x = torch.stack([torch.as_tensor(i[0]).float() for i in items])
        if self.target_width is None:
            return x
        y = torch.stack([torch.as_tensor(i[1]) for i in items])
        return x, (y.float() if self.target_width else y.long())


def _parts(data: Any) -> Tuple[Tuple[Any, Any, Any], Optional[Tuple[Any, Any, Any]]]:
    """``((x, labels, covariates), test part or None)``; x may be a torch Dataset (then no labels/covariates)."""
    def part(p: Any) -> Tuple[Any, Any, Any]:
        if isinstance(p, (tuple, list)) and len(p) == 2 and not isinstance(p[0], (int, float)):
            return p[0], p[1], None
        return p, None, None

    if isinstance(data, dict):
        unknown = [k for k in data if k not in KEYS]
        if unknown or "train" not in data:
            raise DataError(f"data: {'unknown key ' + repr(unknown[0]) if unknown else 'no key train'}; "
                            f"allowed keys: {', '.join(KEYS)} (train required)")
        train = (data["train"], data.get("labels"), data.get("covariates"))
        test = (data["test"], data.get("test_labels"), data.get("test_covariates")) if "test" in data else None
        return train, test
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise DataError(f"data: a sequence of {len(data)} items; expected (train, test)")
        return part(data[0]), part(data[1])
    return (data, None, None), None


def _dataset_part(p: Tuple[Any, Any, Any], what: str) -> Optional[TorchDataset]:
    if isinstance(p[0], TorchDataset) and not isinstance(p[0], Tensor):
        if p[1] is not None or p[2] is not None:
            raise DataError(f"data: {what} is a torch Dataset; its items carry the labels (x, y), not a separate array")
        return p[0]
    return None


def from_python(data: Any, config: FileDataConfig, seed: int) -> Dataset:
    """The :class:`~pyro_vae.data.base.Dataset` for ``data`` (forms in the module docstring)."""
    if data is None:
        raise DataError("data.type: python: this run's data was given from Python and is not stored in the run; "
                        "pass it again (load_run(run_dir, data=...), resume(run_dir, data=...))")
    train, test = _parts(data)
    ds_train, ds_test = _dataset_part(train, "train"), _dataset_part(test, "test") if test is not None else None
    if ds_train is not None or ds_test is not None:
        if ds_train is None or (test is not None and ds_test is None):
            raise DataError("data: give train and test both as torch Datasets, or both as arrays")
        return _from_torch(ds_train, ds_test, config, seed)
    x = _array(train[0], "train")
    labels = _array(train[1], "labels") if train[1] is not None else None
    cov = _array(train[2], "covariates") if train[2] is not None else None
    split = None
    if test is not None:
        xt = _array(test[0], "test")
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(f"data: test datapoints of shape {xt.shape[1:]}, train of {x.shape[1:]}; expected the same "
                            "(a pair is (train, test); labels go in ((x, labels), test) or {'train': x, 'labels': y})")
        for name, a, b in (("labels", labels, test[1]), ("covariates", cov, test[2])):
            if (a is None) != (b is None):
                raise DataError(f"data: {name} given for {'train' if a is not None else 'test'} only; "
                                "give them for both parts or neither")
        n = x.shape[0]
        split = (torch.arange(n), torch.arange(n, n + xt.shape[0]))
        x = np.concatenate([x, xt])
        labels = np.concatenate([labels, _array(test[1], "test_labels")]) if labels is not None else None
        cov = np.concatenate([cov, _array(test[2], "test_covariates")]) if cov is not None else None
    return make_dataset(array_source("python", x, labels, cov, config, where="data", split=split), config, seed)


def _from_torch(train: TorchDataset, test: Optional[TorchDataset], config: FileDataConfig, seed: int) -> Dataset:
    """A user's torch Dataset(s): read into memory when they fit, else streamed through a DataLoader."""
    try:
        reader = TorchRows(*(p for p in (train, test) if p is not None))
    except (TypeError, IndexError, ValueError, RuntimeError) as e:
        raise DataError(f"data: cannot read item 0 of the torch Dataset ({e}); expected x or (x, y)") from None
    n = len(reader)
    check_shape((n, *reader.shape), "data")
    split = (torch.arange(len(train)), torch.arange(len(train), n)) if test is not None else None
    classes = len(getattr(train, "classes", [])) if reader.target_width == 0 else 0  # torchvision's class names
    return make_dataset(Source("python", reader=reader, num_classes=classes, standardize=config.standardize,
                               split=split, where="data"), config, seed)


@DATASETS.register("python", PythonDataConfig)
class PythonData:
    """Data given from Python: ``train(config, out, data=...)``; reloading the run needs it again."""

    def __init__(self, config: PythonDataConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        return from_python(None, self.config, seed)  # a DataError: the data must be given again
