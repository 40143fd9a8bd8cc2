"""MNIST and Fashion-MNIST from a local folder of raw IDX files (or downloaded by torchvision when online)."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..config.schema import opt
from ..errors import DataError
from ..registry import DATASETS
from .base import DataConfigBase
from .dataset import Dataset
from .make import Source, make_dataset

_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dim, images: 3 dims
_PREFIX = {"train": "train", "test": "t10k"}


MAX_IDX_BYTES = 1 << 34  # 16 GiB: a header claiming more is refused before anything is decompressed


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file (``.gz`` or raw); a truncated or malformed file is a DataError naming it.

    The header is read first; the payload is then read (decompressed incrementally) up to the size the
    header states and one byte more, so a gzip bomb costs at most that size, never its expanded size."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, expected a header of at least 8)")
            magic = int.from_bytes(head, "big")
            if magic not in _MAGIC:
                raise DataError(f"{path}: not an unsigned-byte IDX file (magic number {magic}, expected 2049 or 2051)")
            ndim = _MAGIC[magic]
            head += f.read(4 * ndim)
            if len(head) < 4 + 4 * ndim:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, expected a header of "
                                f"{4 + 4 * ndim})")
            dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            size = math.prod(dims)  # Python integers: no overflow
            if math.prod(d or 1 for d in dims) > MAX_IDX_BYTES:  # numpy cannot shape it, even empty
                raise DataError(f"{path}: IDX header claims dimensions {dims}, more than the "
                                f"{MAX_IDX_BYTES >> 30} GiB limit")
            body = f.read(size)
            extra = len(f.read(1))
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        reason = (e.strerror if isinstance(e, OSError) else None) or e
        raise DataError(f"{path}: cannot read IDX file ({reason})") from None
    if len(body) != size or extra:
        got = len(head) + len(body) + extra
        raise DataError(f"{path}: truncated or padded IDX file ({got}{'+' if extra else ''} bytes, header says "
                        f"{len(head) + size})")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def find_idx(root: Path, stem: str) -> Path:
    """``root/stem`` or ``root/stem.gz`` (also under ``root/<DATASET>/raw``); a DataError lists what was tried."""
    candidates = [root / stem, root / f"{stem}.gz"]
    for sub in ("MNIST/raw", "FashionMNIST/raw", "raw"):
        candidates += [root / sub / stem, root / sub / f"{stem}.gz"]
    for c in candidates:
        try:
            if c.is_file():
                return c
        except OSError as e:  # e.g. a folder without read/search permission
            raise DataError(f"{c.parent}: cannot look for IDX files ({e.strerror or e})") from None
    raise DataError(f"{root}: no IDX file {stem}[.gz] (looked in {', '.join(str(c.parent) for c in candidates[::2])})")


def load_idx_split(root: Path, split: str, shape: Tuple[int, int] = (28, 28)) -> Tuple[Tensor, Tensor]:
    """Images ``(N, H, W)`` uint8 and labels ``(N,)`` of one split (``train`` or ``test``) from ``root``."""
    images_path = find_idx(root, f"{_PREFIX[split]}-images-idx3-ubyte")
    labels_path = find_idx(root, f"{_PREFIX[split]}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != shape:
        raise DataError(f"{images_path}: images of shape {images.shape[1:]}, expected {shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images (empty dataset)")
    if labels.max() > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} out of range 0..9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


@dataclass
class MNISTConfig(DataConfigBase):
    type: str = "mnist"
    root: Optional[str] = opt(None, "folder of raw IDX files (offline); null: download with torchvision")
    split: Literal["official", "train", "test"] = opt(
        "official", "official: train files to train, t10k to test; train/test: that file set, split by test_fraction"
    )
    download: bool = opt(True, "when root is null, download with torchvision into ~/.cache/pyro_vae")


@dataclass
class FashionMNISTConfig(MNISTConfig):
    type: str = "fashion-mnist"


class _IDXDataset:
    @staticmethod
    def download(root: Path, train: bool) -> None:
        """Fetch one split's files into ``root`` with torchvision."""
        raise NotImplementedError

    def __init__(self, config: MNISTConfig) -> None:
        self.config = config

    def root(self) -> Path:
        if self.config.root is not None:
            if not self.config.root.strip():
                raise DataError("data.root: empty path; give the folder of raw IDX files (or null to download)")
            root = Path(self.config.root).expanduser()
            if not root.is_dir():
                raise DataError(f"data.root: folder {str(root)!r} does not exist (expected raw IDX files)")
            if not os.access(root, os.R_OK | os.X_OK):
                raise DataError(f"data.root: folder {str(root)!r} is not readable (permission denied)")
            return root
        root = Path("~/.cache/pyro_vae").expanduser()
        if not self.config.download:
            raise DataError(f"data.root is not set and data.download is false: nothing to read {self.config.type} from")
        try:
            for train in (True, False):
                self.download(root, train)
        except Exception as e:  # network errors come in many types
            raise DataError(
                f"could not download {self.config.type} ({e}); offline, set data.root to a folder of raw IDX files"
            ) from None
        return root

    def load(self, seed: int) -> Dataset:
        root, split = self.root(), self.config.split
        images, labels = load_idx_split(root, "train" if split == "official" else split)
        test = load_idx_split(root, "test") if split == "official" else None
        source = Source(self.config.type, x=images, labels=labels, num_classes=10, max_value=255.0, test=test)
        return make_dataset(source, self.config, seed)


@DATASETS.register("mnist", MNISTConfig)
class MNIST(_IDXDataset):
    """MNIST handwritten digits, 28x28, from raw IDX files (``root``) or torchvision's download."""

    @staticmethod
    def download(root: Path, train: bool) -> None:
        from torchvision.datasets import MNIST as Files

        Files(str(root), train=train, download=True)


@DATASETS.register("fashion-mnist", FashionMNISTConfig)
class FashionMNIST(_IDXDataset):
    """Fashion-MNIST clothing images, 28x28, from raw IDX files (``root``) or torchvision's download."""

    @staticmethod
    def download(root: Path, train: bool) -> None:
        from torchvision.datasets import FashionMNIST as Files

        Files(str(root), train=train, download=True)
