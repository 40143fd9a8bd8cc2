"""Data held in memory as tensors, batched through torch's ``DataLoader`` like streamed data."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor

from .dataset import Batch, Rows, Split, SplitSizes, TensorRows, batch_loader
from .labels import choose_labeled, hidden_indices, mixed_batch_indices, seen_labels
from .standardize import Standardizer


@dataclass
class MemoryData(SplitSizes):
    """Data in memory: ``(N, *shape)`` float tensors (images ``(N, C, H, W)`` or vectors ``(N, D)``) with
    ``y`` per the batch convention, split into train and test. Satisfies :class:`~pyro_vae.data.dataset.Dataset`."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    binarize: str = "none"
    covariate_dim: int = 0
    train_labels: Optional[Tensor] = None  # class labels when y holds covariates (for pictures)
    test_labels: Optional[Tensor] = None
    standardizer: Optional[Standardizer] = None
    #: semi-supervised: indices of the training points whose labels the model sees (None: all of them);
    #: batches carry y = −1 for every hidden label (the test split's included). train_y/test_y stay true.
    labeled: Optional[Tensor] = None
    labeled_per_batch: int = 0
    #: a table's feature columns (:class:`~pyro_vae.data.columns.ColumnSpec`: name, kind, levels); None otherwise
    columns: Optional[list] = None
    #: the names of the label classes 0..K−1 (class folders, a label column's values); None when unnamed
    class_names: Optional[List[str]] = None

    in_memory = True

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def split_size(self, split: Split) -> int:
        return int((self.test_x if split == "test" else self.train_x).shape[0])

    def tensors(self, split: Split) -> Batch:
        return (self.test_x, self.test_y) if split == "test" else (self.train_x, self.train_y)

    def labels(self, split: Split) -> Optional[Tensor]:
        """Class labels of ``split`` for colouring pictures (None when the data has none)."""
        if self.covariate_dim:
            return self.test_labels if split == "test" else self.train_labels
        if self.num_classes == 0:
            return None
        return self.test_y if split == "test" else self.train_y

    def validate(self, check: Callable[[Tensor], None]) -> None:
        """Run ``check`` (e.g. a likelihood's support check) on both splits."""
        check(self.train_x)
        check(self.test_x)

    def to(self, device: torch.device) -> "MemoryData":
        """A copy with every tensor on ``device``."""
        return replace(self, **{k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)})

    def _mixing(self, split: str, shuffle: bool) -> bool:
        """Training batches of hidden-label points, each topped up with ``labeled_per_batch`` labelled ones."""
        return (split == "train" and shuffle and self.labeled is not None and self.labeled_per_batch > 0
                and 0 < self.labeled.numel() < self.train_x.shape[0])

    def num_batches(self, split: Split, batch_size: int, shuffle: bool = False) -> int:
        """How many batches :meth:`batches` yields (one epoch)."""
        if self._mixing(split, shuffle):
            return math.ceil((self.train_x.shape[0] - self.labeled.numel()) / batch_size)
        return super().num_batches(split, batch_size)

    def _order(self, split: Split, n: int, batch_size: int, shuffle: bool,
               generator: Optional[torch.Generator], device: torch.device) -> Iterable[Rows]:
        """The epoch's row batches: slices in stored order, or ``randperm(n, generator)`` cut into batches
        (semi-supervised: hidden-label batches topped up with labelled points). Every draw happens up front."""
        if self._mixing(split, shuffle):
            hidden = hidden_indices(n, self.labeled)
            return mixed_batch_indices(hidden, self.labeled, batch_size, self.labeled_per_batch, generator)
        if not shuffle:
            return (slice(start, start + batch_size) for start in range(0, n, batch_size))
        order = torch.randperm(n, generator=generator).to(device)
        return (order[start:start + batch_size] for start in range(0, n, batch_size))

    def batches(
        self, split: Split, batch_size: int, shuffle: bool = False,
        generator: Optional[torch.Generator] = None, skip: int = 0,
    ) -> Iterator[Batch]:
        """Yield ``(x, y)`` batches; training batches are re-binarized each time when ``binarize: dynamic``.

        ``skip``: leave out the first ``skip`` batches of this order without drawing anything for them
        (resuming an epoch that was interrupted after ``skip`` steps).
        """
        x, y = self.tensors(split)
        if self.labeled is not None:  # semi-supervised: the labels the model may see, −1 where hidden
            y = seen_labels(y, self.labeled if split == "train" else None)
        order = self._order(split, x.shape[0], batch_size, shuffle, generator, x.device)
        rows = (r for number, r in enumerate(order) if number >= skip)
        dynamic = split == "train" and self.binarize == "dynamic"
        for xb, yb in batch_loader(TensorRows(x, y), rows):
            yield (torch.bernoulli(xb) if dynamic else xb), yb


ImageData = MemoryData  # the earlier name (it holds vectors as well as images)


def with_labeled(data: MemoryData, count: int, per_batch: int, seed: int) -> MemoryData:
    """``data`` with the labels of ``count`` class-balanced training points seen and every other label hidden."""
    data.labeled = choose_labeled(data.train_y, count, data.num_classes, seed)
    data.labeled_per_batch = per_batch
    return data
