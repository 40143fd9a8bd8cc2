"""The data interface the trainer, evaluation and pictures use, and the row readers behind it.

**The batch convention.** Every dataset yields batches ``(x, y)``:

* ``x``: float tensor ``(B, *shape)`` — images ``(B, C, H, W)`` or vectors ``(B, D)``;
* ``y``: the class labels, a long tensor ``(B,)`` (all zeros when the data has no labels), **or**, for a
  dataset with covariates (``covariate_dim > 0``), the per-datapoint covariate vector c, a float tensor
  ``(B, C)`` with ``C == covariate_dim``. A dataset with both keeps its labels for pictures only
  (:meth:`Dataset.labels`).

**Rows.** A :class:`RowReader` is a ``torch.utils.data.Dataset`` whose item is a whole batch: ``reader[rows]``
for a list (or tensor) of row numbers. Every dataset draws its batches through :func:`batch_loader`, a
``DataLoader`` over a reader with one index list per item (``batch_size=None``), so a batch is read in one call:
one tensor indexing for :class:`TensorRows` (data in memory), one worker call for a file reader. The epoch's
order is ``torch.randperm(N, generator)`` either way, so on the same data and seed both give the same batches.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator, Literal, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ..threads import worker_init_fn
from .standardize import Standardizer

Split = Literal["train", "test"]
Batch = Tuple[Tensor, Tensor]
Rows = Union[Tensor, slice, Sequence[int]]
CHUNK_ROWS = 4096  # rows per read in sequential passes (statistics, validation, the held-out split, loading)


@runtime_checkable
class Dataset(Protocol):
    """What training, evaluation and pictures need from a dataset (see the batch convention above).

    ``test_x``/``test_y`` are the held-out split in memory (evaluation reports and pictures read them;
    a streamed dataset loads its held-out split on first use).
    """

    name: str
    num_classes: int      # label classes (0: no labels)
    covariate_dim: int    # width C of the covariates carried as y (0: y holds labels)
    binarize: str
    #: semi-supervised: indices of the training points whose labels the model sees (None: every label)
    labeled: Optional[Tensor]
    #: with ``labeled``: labelled points added to every training batch (0: shuffled in with the rest)
    labeled_per_batch: int
    #: the training split's per-feature standardisation (None: the data as read)
    standardizer: Optional[Standardizer]
    #: the names of the label classes 0..K−1 (None when unnamed)
    class_names: Optional[list]
    #: True when both splits are tensors in memory (:meth:`tensors` serves the training split too)
    in_memory: bool

    @property
    def shape(self) -> Tuple[int, ...]: ...

    @property
    def num_train(self) -> int: ...

    @property
    def num_test(self) -> int: ...

    @property
    def test_x(self) -> Tensor: ...

    @property
    def test_y(self) -> Tensor: ...

    def labels(self, split: Split) -> Optional[Tensor]: ...

    def tensors(self, split: Split) -> Batch:
        """The whole split ``(x, y)`` in memory (a streamed dataset: its held-out split only)."""

    def num_batches(self, split: Split, batch_size: int, shuffle: bool = False) -> int: ...

    def batches(self, split: Split, batch_size: int, shuffle: bool = False,
                generator: Optional[torch.Generator] = None, skip: int = 0) -> Iterator[Batch]: ...

    def validate(self, check: Callable[[Tensor], None]) -> None: ...

    def to(self, device: torch.device) -> "Dataset": ...


class SplitSizes:
    """What both kinds of dataset derive from their split sizes alone (:meth:`split_size`)."""

    def split_size(self, split: Split) -> int:
        raise NotImplementedError

    @property
    def num_train(self) -> int:
        return self.split_size("train")

    @property
    def num_test(self) -> int:
        return self.split_size("test")

    def num_batches(self, split: Split, batch_size: int, shuffle: bool = False) -> int:
        """How many batches an epoch of ``split`` has."""
        return math.ceil(self.split_size(split) / batch_size)


class RowReader(TorchDataset):
    """A ``torch.utils.data.Dataset`` whose item is a batch: ``reader[rows]`` is ``(len(rows), *shape)``
    (or ``(x, y)`` from a reader that carries its own labels or covariates)."""

    shape: Tuple[int, ...]
    #: what the reader's items carry besides x: None (x only), 0 (labels), C > 0 (covariates of width C)
    target_width: Optional[int] = None

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, rows: np.ndarray):
        raise NotImplementedError

    def nbytes(self) -> int:
        """The float32 size of every row (what holding them in memory takes)."""
        return 4 * len(self) * int(np.prod(self.shape or (1,)))

    def __getitem__(self, rows: Sequence[int]):
        return self.read(np.asarray(rows, dtype=np.int64))


class TensorRows(RowReader):
    """Rows of tensors in memory: ``reader[rows]`` is ``(x[rows], y[rows])``, one indexing per batch."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y, self.shape = x, y, tuple(x.shape[1:])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def read(self, rows) -> Batch:
        return self.x[rows], self.y[rows]

    __getitem__ = read

    def to(self, device: torch.device) -> "TensorRows":
        return TensorRows(self.x.to(device), self.y.to(device))


def split_xy(out) -> Tuple[Tensor, Optional[Tensor]]:
    """A reader's output: ``x``, or ``(x, y)`` from a reader that carries its own labels/covariates."""
    return (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)


def _as_read(batch):
    """The DataLoader's collate step: a reader's item is already a batch."""
    return batch


def batch_loader(reader: RowReader, rows: Iterable[Rows], num_workers: int = 0,
                 pin_memory: bool = False) -> DataLoader:
    """A ``DataLoader`` yielding ``reader[r]`` for each ``r`` in ``rows`` (index lists or slices, in order),
    read by ``num_workers`` worker processes (0: in this process); its own seed generator, so drawing batches
    leaves the global random streams untouched."""
    return DataLoader(reader, sampler=rows, batch_size=None, collate_fn=_as_read, num_workers=num_workers,
                      pin_memory=pin_memory, prefetch_factor=4 if num_workers else None,
                      worker_init_fn=worker_init_fn if num_workers else None,  # one thread per worker
                      generator=torch.Generator())
