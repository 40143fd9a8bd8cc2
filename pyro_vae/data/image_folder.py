"""``data.type: image_folder``: a folder of image files read by torchvision (PNG, JPEG, GIF, WebP), resized
and converted to grayscale or RGB; one sub-folder per class gives labels (as torchvision's ImageFolder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..config.schema import opt
from ..errors import DataError
from ..registry import DATASETS
from .array import require_path
from .base import FileDataConfig
from .dataset import Dataset, RowReader
from .make import Source, make_dataset

EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def _size(v) -> bool:
    return v is None or (len(v) == 2 and all(s >= 1 for s in v))


@dataclass
class ImageFolderConfig(FileDataConfig):
    type: str = "image_folder"
    mode: Literal["grayscale", "rgb"] = opt("rgb", "channels: grayscale (C = 1) or rgb (C = 3)")
    size: Optional[List[int]] = opt(None, "[height, width] to resize every image to; null: all images must "
                                          "have the same size", _size, "[height, width] of integers >= 1")
    scale: bool = opt(True, "divide 8-bit values by 255 (to [0, 1])")


def find_images(root: Path) -> Tuple[List[Path], Optional[List[int]], List[str]]:
    """Image files under ``root`` (sorted) and, with class sub-folders, their labels and the class names."""
    def images_in(folder: Path) -> List[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)

    top = images_in(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and images_in(d))
    if top and classes:
        raise DataError(f"{root}: holds images both at the top level and in sub-folders ({', '.join(classes[:5])}); "
                        "expected either a flat folder or one sub-folder per class")
    if len(classes) == 1:  # one class: no labels to learn from
        return images_in(root / classes[0]), None, []
    if classes:
        files, labels = [], []
        for k, name in enumerate(classes):
            found = images_in(root / name)
            files += found
            labels += [k] * len(found)
        return files, labels, classes
    if not top:
        raise DataError(f"{root}: no image files ({', '.join(EXTENSIONS)}) in the folder or its sub-folders")
    return top, None, []


DEPTH_16 = 65535  # the largest 16-bit value


def header_size(file: str) -> Tuple[int, int]:
    """``(height, width)`` of image ``file`` from its header alone (PIL opens lazily: no pixel is decoded); a
    DataError for an unreadable file, an animation, or more pixels than the decoder's limit
    (``PIL.Image.MAX_IMAGE_PIXELS``), checked before anything decodes it."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # PIL warns from the limit on and raises from twice it: both refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as im:
                height, width, frames = im.height, im.width, getattr(im, "n_frames", 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{file}: over the image decoder's limit of {Image.MAX_IMAGE_PIXELS:,} pixels "
                        f"(PIL.Image.MAX_IMAGE_PIXELS: {str(e).split(',')[0]}); expected smaller images; nothing "
                        "was decoded") from None
    except (OSError, ValueError, SyntaxError) as e:  # SyntaxError: PIL's word for some malformed headers
        raise DataError(f"{file}: cannot read as an image ({e})") from None
    if frames > 1:
        raise DataError(f"{file}: an animation of {frames} frames; expected still images (save one frame)")
    return height, width


class ImageFiles(RowReader):
    """Image files decoded by ``torchvision.io.decode_image`` (to ``mode``), resized to ``size`` when given:
    ``reader[rows]`` is float32 ``(B, C, H, W)`` of 0..255 values."""

    def __init__(self, files: List[Path], mode: str, size: Optional[List[int]]) -> None:
        self.files, self.mode, self.size = [str(f) for f in files], mode, size
        self.shape = (1 if mode == "grayscale" else 3, *self._common_size())

    def _common_size(self) -> Tuple[int, int]:
        """Every file's header checked (decodable, a still image, within the decoder's pixel limit); the one
        size they share, or ``data.size``."""
        sizes = {}
        for f in self.files:
            sizes.setdefault(header_size(f), f)
            if len(sizes) > 1 and self.size is None:
                (a, fa), (b, fb) = list(sizes.items())[:2]
                raise DataError(f"{fb}: {b[0]}x{b[1]} pixels but {fa} is {a[0]}x{a[1]}; images of mixed sizes need "
                                "data.size: [height, width] to resize them")
        return (int(self.size[0]), int(self.size[1])) if self.size is not None else next(iter(sizes))

    def __len__(self) -> int:
        return len(self.files)

    def load(self, file: str) -> Tensor:
        from torchvision.io import ImageReadMode, decode_image
        from torchvision.transforms.v2.functional import resize

        mode = ImageReadMode.GRAY if self.mode == "grayscale" else ImageReadMode.RGB
        try:
            image = decode_image(file, mode=mode)
        except (RuntimeError, ValueError) as e:
            raise DataError(f"{file}: cannot decode as an image ({str(e).splitlines()[0]})") from None
        if image.dtype != torch.uint8:  # 16-bit PNG: to the 8-bit scale of the others (0..65535 -> 0..255)
            image = ((image.to(torch.int64) * 255 + (DEPTH_16 // 2)) // DEPTH_16).to(torch.uint8)
        if self.size is not None and tuple(image.shape[1:]) != tuple(self.shape[1:]):
            image = resize(image, list(self.shape[1:]), antialias=True)
        elif tuple(image.shape) != self.shape:
            raise DataError(f"{file}: {image.shape[1]}x{image.shape[2]} pixels, expected {self.shape[1]}x{self.shape[2]} "
                            "(set data.size to resize)")
        return image

    def read(self, rows: np.ndarray) -> Tensor:
        return torch.stack([self.load(self.files[int(r)]) for r in rows]).float()


@DATASETS.register("image_folder", ImageFolderConfig)
class ImageFolderData:
    """A folder of images (class sub-folders give labels), resized and read as grayscale or RGB."""

    def __init__(self, config: ImageFolderConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        c = self.config
        root = require_path(c, "a folder of images")
        if not root.is_dir():
            raise DataError(f"data.path: {str(root)!r} is not a folder (expected a folder of images)")
        if c.standardize and c.binarize != "none":
            raise DataError("data.standardize: true needs data.binarize: none")
        files, labels, classes = find_images(root)
        reader = ImageFiles(files, c.mode, c.size)
        y = torch.tensor(labels, dtype=torch.long) if labels is not None else None
        source = Source(root.name, reader=reader, labels=y, num_classes=len(classes), max_value=255.0,
                        standardize=c.standardize, class_names=list(classes) or None, where=str(root))
        return make_dataset(source, c, seed)
