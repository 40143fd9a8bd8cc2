"""The one dataset type: a training and a held-out split, each a row reader batched through torch's ``DataLoader``.

A split is a :class:`~pyro_vae.data.dataset.RowReader` whose item is a whole batch: rows held in memory
(:class:`~pyro_vae.data.dataset.TensorRows`, items ``(x, y)``) or rows of a file read on demand
(:class:`~pyro_vae.data.streaming.SplitRows`, whose batches are read in DataLoader workers and finished —
moved, scaled, standardized, given their y — on the training device). Either way an epoch's order is ``torch.randperm(N, generator)``
cut into batches (every draw up front, so resuming after ``skip`` batches is exact), the batches are read by
:func:`~pyro_vae.data.dataset.batch_loader`, and training batches are re-binarized (``binarize: dynamic``) in
this process. The same data and seed give the same batches in memory and streamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..errors import DataError
from .checks import check_finite
from .dataset import CHUNK_ROWS, Batch, Rows, Split, SplitSizes, TensorRows, batch_loader
from .labels import choose_labeled, hidden_indices, mixed_batch_indices, seen_labels
from .standardize import Standardizer
from .streaming import SplitRows


@dataclass
class RowData(SplitSizes):
    """A dataset: ``train`` and ``test`` readers of ``(x, y)`` batches (x ``(B, *shape)`` images or vectors, y per
    the batch convention). Satisfies :class:`~pyro_vae.data.dataset.Dataset`; ``in_memory`` when both splits
    are tensors. A streamed held-out split is read into memory on first use (reports and pictures need it),
    binarized once with ``test_generator`` when ``binarize`` is not ``none``."""

    name: str
    train: Union[TensorRows, SplitRows]
    test: Union[TensorRows, SplitRows]
    num_classes: int
    binarize: str = "none"
    covariate_dim: int = 0
    train_labels: Optional[Tensor] = None  # class labels for pictures when y holds covariates (or is streamed)
    test_labels: Optional[Tensor] = None
    standardizer: Optional[Standardizer] = None
    #: semi-supervised: indices of the training points whose labels the model sees (None: all of them);
    #: batches carry y = −1 for every hidden label (the test split's included); the stored labels stay true
    labeled: Optional[Tensor] = None
    labeled_per_batch: int = 0
    #: a table's feature columns (:class:`~pyro_vae.data.columns.ColumnSpec`: name, kind, levels); None otherwise
    columns: Optional[list] = None
    #: the names of the label classes 0..K−1 (class folders, a label column's values); None when unnamed
    class_names: Optional[List[str]] = None
    num_workers: int = 0  # DataLoader worker processes reading a streamed split
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    test_generator: Optional[torch.Generator] = None  # draws a streamed held-out split's one binarization
    _validated: List[Callable] = field(default_factory=list)

    @property
    def in_memory(self) -> bool:
        """True when both splits are tensors in memory (:meth:`tensors` serves the training split too)."""
        return isinstance(self.train, TensorRows) and isinstance(self.test, TensorRows)

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.train.shape)

    def split_size(self, split: Split) -> int:
        return len(self.test if split == "test" else self.train)

    # --- whole splits in memory ------------------------------------------------------------------------------
    def tensors(self, split: Split) -> Batch:
        """The whole split ``(x, y)`` in memory (a streamed training split is read in batches only: a DataError)."""
        if split == "test":
            return self._held_out()
        if not isinstance(self.train, TensorRows):
            raise DataError(f"{self.name}: the training split is streamed (data.in_memory); it is read in batches")
        return self.train.x, self.train.y

    def _held_out(self) -> Batch:
        if not isinstance(self.test, TensorRows):  # streamed: read once, in chunks of the stored order
            cpu = torch.device("cpu")
            parts = [self.test.finish(rows, self.test.read(rows), cpu)
                     for rows in torch.arange(len(self.test)).split(CHUNK_ROWS)]
            x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            if self.binarize != "none":
                x = torch.bernoulli(x, generator=self.test_generator)
            self.test = TensorRows(x.to(self.device), y.to(self.device))
        return self.test.x, self.test.y

    @property
    def train_x(self) -> Tensor:
        return self.tensors("train")[0]

    @property
    def train_y(self) -> Tensor:
        return self.tensors("train")[1]

    @property
    def test_x(self) -> Tensor:
        return self._held_out()[0]

    @property
    def test_y(self) -> Tensor:
        return self._held_out()[1]

    def labels(self, split: Split) -> Optional[Tensor]:
        """Class labels of ``split`` for colouring pictures (None when the data has none, or they are streamed)."""
        if not self.num_classes:
            return None
        stored = self.test_labels if split == "test" else self.train_labels
        if stored is not None:
            return stored.to(self.device)
        if self.covariate_dim or (split == "train" and not isinstance(self.train, TensorRows)):
            return None
        return self.tensors(split)[1]

    def to(self, device: torch.device) -> "RowData":
        """A copy whose batches and in-memory tensors are on ``device`` (streamed rows move per batch)."""
        def move(t):  # tensors and in-memory splits; a streamed split moves each batch as it is read
            return t.to(device) if isinstance(t, (Tensor, TensorRows)) else t
        return replace(self, train=move(self.train), test=move(self.test), train_labels=move(self.train_labels),
                       test_labels=move(self.test_labels), device=torch.device(device))

    # --- checks ----------------------------------------------------------------------------------------------
    def validate(self, check: Callable[[Tensor], None]) -> None:
        """Run ``check`` (e.g. a likelihood's support check) on both splits: whole tensors in memory, one
        sequential pass of chunks when streamed, then finite values first (once per check)."""
        if self.in_memory:
            check(self.train.x)
            check(self.test.x)
            return
        if check in self._validated:
            return
        for split, reader in (("train", self.train), ("test", self.test)):
            if isinstance(reader, TensorRows):  # a held-out split already read into memory
                check(reader.x)
                continue
            for rows, x in reader.sequential():
                try:
                    check_finite(x, f"{self.name} ({split} split)")
                except DataError:
                    bad = int(rows[(~torch.isfinite(x.reshape(x.shape[0], -1))).any(1)][0])
                    raise DataError(f"{self.name}: row {bad} holds NaN or inf values; expected finite numbers") \
                        from None
                check(x)
        self._validated.append(check)

    # --- batches ---------------------------------------------------------------------------------------------
    def _mixing(self, split: str, shuffle: bool) -> bool:
        """Training batches of hidden-label points, each topped up with ``labeled_per_batch`` labelled ones."""
        return (split == "train" and shuffle and self.labeled is not None and self.labeled_per_batch > 0
                and 0 < self.labeled.numel() < self.num_train)

    def num_batches(self, split: Split, batch_size: int, shuffle: bool = False) -> int:
        """How many batches :meth:`batches` yields (one epoch)."""
        if self._mixing(split, shuffle):
            return math.ceil((self.num_train - self.labeled.numel()) / batch_size)
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

    def batches(self, split: Split, batch_size: int, shuffle: bool = False,
                generator: Optional[torch.Generator] = None, skip: int = 0) -> Iterator[Batch]:
        """Yield ``(x, y)`` batches; training batches are re-binarized each time when ``binarize: dynamic``.

        ``skip``: leave out the first ``skip`` batches of this order without drawing anything for them
        (resuming an epoch that was interrupted after ``skip`` steps).
        """
        if split == "test" and self.binarize != "none":  # the held-out split is binarized once, in memory
            self._held_out()
        reader = self.test if split == "test" else self.train
        if self.labeled is not None:  # semi-supervised: the labels the model may see, −1 where hidden
            reader = TensorRows(reader.x, seen_labels(reader.y, self.labeled if split == "train" else None))
        in_memory = isinstance(reader, TensorRows)  # indexed where its tensors are; a file's rows on the CPU
        order = self._order(split, len(reader), batch_size, shuffle, generator,
                            self.device if in_memory else torch.device("cpu"))
        dynamic = split == "train" and self.binarize == "dynamic"
        if in_memory:
            rows = (r for number, r in enumerate(order) if number >= skip)
            for xb, yb in batch_loader(reader, rows):
                yield (torch.bernoulli(xb) if dynamic else xb), yb
            return
        rows = [r.tolist() if isinstance(r, Tensor) else r  # lists: cheap to send to workers
                for number, r in enumerate(order) if number >= skip]
        loader = batch_loader(reader, rows, self.num_workers, pin_memory=self.device.type == "cuda")
        for index, out in zip(rows, loader):
            xb, yb = reader.finish(index, out, self.device)
            yield (torch.bernoulli(xb) if dynamic else xb), yb


def MemoryData(name: str, train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
               binarize: str = "none", covariate_dim: int = 0, **fields) -> RowData:
    """A :class:`RowData` of tensors in memory: ``(N, *shape)`` float ``x`` and ``y`` per the batch convention;
    ``fields``: the other :class:`RowData` fields (``train_labels``, ``standardizer``, ``class_names``...)."""
    return RowData(name, TensorRows(train_x, train_y), TensorRows(test_x, test_y), num_classes, binarize,
                   covariate_dim, **fields)


ImageData = MemoryData  # the earlier name (it holds vectors as well as images)


def with_labeled(data: RowData, count: int, per_batch: int, seed: int) -> RowData:
    """``data`` with the labels of ``count`` class-balanced training points seen and every other label hidden."""
    data.labeled = choose_labeled(data.train_y, count, data.num_classes, seed)
    data.labeled_per_batch = per_batch
    return data
