"""Data larger than memory: rows read on demand through ``torch.utils.data.DataLoader`` with workers.

:class:`StreamData` satisfies :class:`~pyro_vae.data.dataset.Dataset`. Its rows come from a
:class:`~pyro_vae.data.dataset.RowReader` (:class:`NpyRows`: a memory-mapped ``.npy``; image files in
:mod:`pyro_vae.data.image_folder`; a user's torch Dataset in :mod:`pyro_vae.data.python`), read a batch per
call by :func:`~pyro_vae.data.dataset.batch_loader`, as in-memory data is.

The epoch's order is ``torch.randperm(num_train, generator)`` exactly as in
:class:`~pyro_vae.data.memory.MemoryData`, so the same data and seed give the same batches either way, and
resuming mid-epoch skips batches exactly. Labels and covariates (one number or a short vector per row) are
held in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .checks import check_finite
from .dataset import CHUNK_ROWS, Batch, RowReader, Split, SplitSizes, batch_loader, split_xy
from .standardize import Standardizer


def _proc_kb(file: str, key: str) -> Optional[int]:
    try:
        for line in Path(file).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's ``MemAvailable`` (all physical memory as a
    fallback), lowered by the process's own limits: ``RLIMIT_DATA`` minus its data segment, ``RLIMIT_AS``
    minus its address space (e.g. ``ulimit -d`` / ``ulimit -v``)."""
    free = _proc_kb("/proc/meminfo", "MemAvailable")
    if free is None:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        import resource
    except ImportError:  # not on POSIX
        return free
    for limit, used in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY:
            free = min(free, max(soft - (_proc_kb("/proc/self/status", used) or 0), 0))
    return free


def choose_in_memory(setting, nbytes: int) -> bool:
    """``in_memory: auto`` keeps data in memory when its float32 size is under half the available memory."""
    if setting == "auto":
        return nbytes < available_memory() // 2
    return bool(setting)


class NpyRows(RowReader):
    """Rows of a ``.npy`` file through ``np.load(mmap_mode="r")``: each worker maps the file once and
    copies only the rows asked for (sorted, for sequential reads), as float32."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        array = self._open()
        if array.ndim == 0:
            raise DataError(f"{self.path}: a single value (shape ()); expected (N, D) vectors or (N, [C,] H, W) images")
        self.shape, self.dtype, self.rows = tuple(array.shape[1:]), array.dtype, int(array.shape[0])
        if len(self.shape) == 2:  # (N, H, W): one channel, (N, 1, H, W), as the in-memory path reads it
            self.shape = (1, *self.shape)
        self._array: Optional[np.ndarray] = None

    def _open(self) -> np.ndarray:
        try:
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:  # EOFError: an empty file
            raise DataError(f"{self.path}: cannot read as a .npy array ({str(e).splitlines()[0] if str(e) else ''}"
                            f"{type(e).__name__ if not str(e) else ''}); expected a whole np.save file") from None

    def __getstate__(self):  # workers map the file themselves
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return self.rows

    def read(self, rows: np.ndarray) -> Tensor:
        if self._array is None:
            self._array = self._open()
        order = np.argsort(rows, kind="stable")
        block = np.empty((len(rows), *self.shape), dtype=np.float32)
        block[order] = self._array[rows[order]].reshape(len(rows), *self.shape)
        return torch.from_numpy(block)


@dataclass
class StreamData(SplitSizes):
    """Rows read on demand by ``reader`` (a :class:`RowReader`), split by ``train_rows``/``test_rows``;
    ``y`` (labels ``(N,)`` or covariates ``(N, C)``) in memory, or None when the reader returns ``(x, y)``
    (a user's ``torch.utils.data.Dataset``). Satisfies :class:`~pyro_vae.data.base.Dataset`.

    Each batch is prepared in the main process: x / ``max_value`` (when ``scale``), standardised, then
    re-binarized (``binarize: dynamic``, the training split only), exactly as :class:`MemoryData` does."""

    name: str
    reader: RowReader
    y: Optional[Tensor]
    train_rows: Tensor
    test_rows: Tensor
    num_classes: int
    binarize: str = "none"
    covariate_dim: int = 0
    labels_all: Optional[Tensor] = None  # class labels when y holds covariates (for pictures)
    standardizer: Optional[Standardizer] = None
    labeled: Optional[Tensor] = None  # partly labelled data needs the data in memory (MemoryData)
    labeled_per_batch: int = 0
    class_names: Optional[List[str]] = None
    max_value: float = 1.0
    num_workers: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    test_generator: Optional[torch.Generator] = None  # draws the held-out split's one binarization
    _test: Optional[Tuple[Tensor, Tensor]] = None
    _validated: List[Callable] = field(default_factory=list)

    in_memory = False

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.reader.shape)

    def split_size(self, split: Split) -> int:
        return int((self.test_rows if split == "test" else self.train_rows).shape[0])

    def _prepare(self, x: Tensor) -> Tensor:
        x = x / self.max_value if self.max_value != 1.0 else x
        return self.standardizer.apply(x) if self.standardizer is not None else x

    def _chunks(self, rows: Tensor) -> Iterator[Tuple[Tensor, Tensor]]:
        """Sequential pass: (rows, prepared x) in chunks of CHUNK_ROWS sorted rows, read in the main process."""
        rows = rows.sort().values
        for start in range(0, rows.shape[0], CHUNK_ROWS):
            part = rows[start:start + CHUNK_ROWS]
            yield part, self._prepare(split_xy(self.reader.read(part.numpy()))[0])

    def fit_standardizer(self) -> Standardizer:
        """Per-feature mean and std of the training split, in one streamed pass (float64 sums)."""
        total = total_sq = None
        for _, x in self._chunks(self.train_rows):
            x = x.double()
            total = x.sum(0) if total is None else total + x.sum(0)
            total_sq = (x ** 2).sum(0) if total_sq is None else total_sq + (x ** 2).sum(0)
        return Standardizer.from_moments(total, total_sq, self.num_train)

    def validate(self, check: Callable[[Tensor], None]) -> None:
        """One sequential pass over both splits: finite values, then ``check`` on each chunk (once per check:
        training validates before writing the run folder and again when it starts)."""
        if check in self._validated:
            return
        for split, rows in (("train", self.train_rows), ("test", self.test_rows)):
            for part, x in self._chunks(rows):
                try:
                    check_finite(x, f"{self.name} ({split} split)")
                except DataError:
                    bad = int(part[(~torch.isfinite(x.reshape(x.shape[0], -1))).any(1)][0])
                    raise DataError(f"{self.name}: row {bad} holds NaN or inf values; expected finite numbers") \
                        from None
                check(x)
        self._validated.append(check)

    def _held_out(self) -> Tuple[Tensor, Tensor]:
        if self._test is None:
            parts = [split_xy(self.reader.read(part.numpy())) for part in self.test_rows.split(CHUNK_ROWS)]
            x = self._prepare(torch.cat([p[0] for p in parts]))
            y = torch.cat([p[1] for p in parts]) if self.y is None else self.y[self.test_rows]
            if self.binarize != "none":
                x = torch.bernoulli(x, generator=self.test_generator)
            self._test = (x.to(self.device), y.to(self.device))
        return self._test

    @property
    def test_x(self) -> Tensor:
        """The held-out split in memory (read on first use: reports and pictures need it)."""
        return self._held_out()[0]

    @property
    def test_y(self) -> Tensor:
        return self._held_out()[1]

    def tensors(self, split: Split) -> Batch:
        """The held-out split in memory; the training split is streamed only (a DataError)."""
        if split != "test":
            raise DataError(f"{self.name}: the training split is streamed (data.in_memory); it is read in batches")
        return self._held_out()

    def labels(self, split: Split) -> Optional[Tensor]:
        rows = self.test_rows if split == "test" else self.train_rows
        if self.y is None:  # labels inside the reader's items: the held-out ones are in memory
            return self.test_y if split == "test" and self.num_classes and not self.covariate_dim else None
        if self.covariate_dim:
            return self.labels_all[rows].to(self.device) if self.labels_all is not None else None
        return self.y[rows].to(self.device) if self.num_classes else None

    def to(self, device: torch.device) -> "StreamData":
        self.device, self._test = torch.device(device), None
        return self

    def batches(self, split: Split, batch_size: int, shuffle: bool = False,
                generator: Optional[torch.Generator] = None, skip: int = 0) -> Iterator[Batch]:
        """``(x, y)`` batches read by a DataLoader with ``num_workers`` workers, in the order
        ``randperm(N, generator)`` (``shuffle``) or the stored order; ``skip`` leaves out the first batches."""
        if split == "test" and self.binarize != "none":  # the held-out split is binarized once, in memory
            x, y = self._held_out()
            for start in range(0, x.shape[0], batch_size):
                yield x[start:start + batch_size], y[start:start + batch_size]
            return
        rows = self.train_rows if split == "train" else self.test_rows
        n = rows.shape[0]
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        chunks: List[Tensor] = [rows[order[s:s + batch_size]] for s in range(skip * batch_size, n, batch_size)]
        loader = batch_loader(self.reader, [c.tolist() for c in chunks], self.num_workers,
                              pin_memory=self.device.type == "cuda")
        for chunk, out in zip(chunks, loader):
            xb, yb = split_xy(out)
            xb = self._prepare(xb.to(self.device, non_blocking=True))
            if split == "train" and self.binarize == "dynamic":
                xb = torch.bernoulli(xb)
            yield xb, (self.y[chunk] if yb is None else yb).to(self.device)
