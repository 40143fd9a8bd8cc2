"""Data larger than memory: rows read on demand, and whether a dataset fits.

A streamed split is a :class:`SplitRows` over a :class:`~pyro_vae.data.dataset.RowReader` (:class:`NpyRows`: a
memory-mapped ``.npy``; image files in :mod:`pyro_vae.data.image_folder`; a user's torch Dataset in
:mod:`pyro_vae.data.python`), held by the same :class:`~pyro_vae.data.rowdata.RowData` as rows in memory and
batched the same way, so the same data and seed give the same batches either way. Labels and covariates (one
number or a short vector per row) are held in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .dataset import CHUNK_ROWS, Batch, RowReader, split_xy
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


class SplitRows(RowReader):
    """One split of a file's rows: item ``i`` is row ``rows[i]`` of ``reader``, prepared as rows in memory are
    (÷ ``max_value``, then ``standardizer``), with its y: ``y[row]`` (labels ``(N,)`` or covariates ``(N, C)``
    held in memory) or, with ``y`` None, the one the reader carries (a user's ``torch.utils.data.Dataset``).
    Read a batch per call, in DataLoader workers or in this process."""

    def __init__(self, reader: RowReader, rows: Tensor, y: Optional[Tensor] = None, max_value: float = 1.0,
                 standardizer: Optional[Standardizer] = None) -> None:
        self.reader, self.rows, self.y = reader, rows, y
        self._rows = rows.numpy()  # indexed per batch: numpy indexing of a list is the cheap one
        self.max_value, self.standardizer = max_value, standardizer
        self.shape, self.target_width = tuple(reader.shape), reader.target_width

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def prepare(self, x: Tensor) -> Tensor:
        """x / ``max_value``, then standardized (when a standardizer is set)."""
        x = x / self.max_value if self.max_value != 1.0 else x
        return self.standardizer.apply(x) if self.standardizer is not None else x

    def _file_rows(self, index) -> np.ndarray:
        return self._rows[index if isinstance(index, slice) else np.asarray(index, dtype=np.int64)]

    def read(self, index):
        """Items ``index`` (positions in the split: a slice, list or tensor) as read: x, or ``(x, y)`` when the
        reader carries its targets. Runs in DataLoader workers; :meth:`finish` completes the batch."""
        return self.reader.read(self._file_rows(index))

    __getitem__ = read

    def finish(self, index, out, device: torch.device) -> Batch:
        """A batch read by :meth:`read` as ``(x, y)`` on ``device``: x prepared there (÷ ``max_value``,
        standardized), y the reader's or the one held in memory for those rows."""
        x, y = split_xy(out)
        y = self.y[torch.from_numpy(self._file_rows(index))] if y is None else y
        return self.prepare(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)

    def sequential(self) -> Iterator[Tuple[Tensor, Tensor]]:
        """One pass in file order: (file rows, prepared x) in chunks of CHUNK_ROWS sorted rows."""
        rows = self.rows.sort().values
        for start in range(0, rows.shape[0], CHUNK_ROWS):
            part = rows[start:start + CHUNK_ROWS]
            yield part, self.prepare(split_xy(self.reader.read(part.numpy()))[0])


def fit_standardizer(split: SplitRows) -> Standardizer:
    """Per-feature mean and std of a streamed training split, in one sequential pass (float64 sums)."""
    total = total_sq = None
    for _, x in split.sequential():
        x = x.double()
        total = x.sum(0) if total is None else total + x.sum(0)
        total_sq = (x ** 2).sum(0) if total_sq is None else total_sq + (x ** 2).sum(0)
    return Standardizer.from_moments(total, total_sq, len(split))
