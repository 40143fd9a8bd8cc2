"""The in-memory image dataset every loader returns, its held-out split and its batching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Optional, Tuple

import torch
from torch import Tensor

from ..config.schema import fraction, opt, positive
from ..errors import DataError


@dataclass
class DataConfigBase:
    """Options shared by every dataset."""

    test_fraction: float = opt(0.1, "fraction held out as the test split", fraction, "a number in (0, 1)")
    binarize: Literal["none", "dynamic", "static"] = opt(
        "dynamic", "dynamic: fresh Bernoulli draw per batch; static: once; test set is always drawn once"
    )
    scale: bool = opt(True, "scale pixel values to [0, 1]")
    limit: Optional[int] = opt(None, "use at most this many images (before the split)", positive, "an integer >= 1")


@dataclass
class ImageData:
    """Images ``(N, C, H, W)`` as float tensors with integer labels, split into train and test."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    binarize: str = "none"

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device) -> "ImageData":
        move = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y")}
        return ImageData(self.name, num_classes=self.num_classes, binarize=self.binarize, **move)

    def batches(
        self, split: Literal["train", "test"], batch_size: int, shuffle: bool = False,
        generator: Optional[torch.Generator] = None, skip: int = 0,
    ) -> Iterator[Tuple[Tensor, Tensor]]:
        """Yield ``(x, y)`` batches; training batches are re-binarized each time when ``binarize: dynamic``.

        ``skip``: leave out the first ``skip`` batches of this order without drawing anything for them
        (resuming an epoch that was interrupted after ``skip`` steps).
        """
        x, y = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        n = x.shape[0]
        order = torch.randperm(n, generator=generator).to(x.device) if shuffle else None
        for start in range(skip * batch_size, n, batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            xb = x[idx]
            if split == "train" and self.binarize == "dynamic":
                xb = torch.bernoulli(xb)
            yield xb, y[idx]


def make_image_data(
    name: str, images: Tensor, labels: Tensor, config: DataConfigBase, seed: int,
    max_value: float, test: Optional[Tuple[Tensor, Tensor]] = None, num_classes: int = 10,
) -> ImageData:
    """Scale, subsample, split (``test_fraction``, or the given ``test`` split) and binarize raw images.

    ``images`` is ``(N, C, H, W)`` or ``(N, H, W)`` of raw values in ``[0, max_value]``.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if test is not None and test[0].dim() == 3:
        test = (test[0].unsqueeze(1), test[1])
    if images.shape[0] == 0:
        raise DataError(f"dataset {name!r} is empty")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"dataset {name!r}: {images.shape[0]} images but {labels.shape[0]} labels")
    for part, y in (("", labels), (" (test split)", test[1] if test is not None else labels)):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DataError(f"dataset {name!r}{part}: labels in [{int(y.min())}, {int(y.max())}], expected 0..{num_classes - 1}")
    gen = torch.Generator().manual_seed(seed)

    def prepare(x: Tensor) -> Tensor:
        x = x.float()
        return x / max_value if config.scale else x

    order = torch.randperm(images.shape[0], generator=gen)
    if config.limit is not None:
        order = order[: config.limit]
    images, labels = prepare(images[order]), labels[order].long()
    if test is None:
        n_test = max(1, int(round(config.test_fraction * images.shape[0])))
        if n_test >= images.shape[0]:
            raise DataError(f"dataset {name!r}: {images.shape[0]} images leave none for training "
                            f"with test_fraction={config.test_fraction}")
        train = (images[n_test:], labels[n_test:])
        test = (images[:n_test], labels[:n_test])
    else:
        train = (images, labels)
        test = (prepare(test[0]), test[1].long())
    binarize = config.binarize
    if binarize != "none":
        if config.scale is False:
            raise DataError(f"dataset {name!r}: binarize={binarize!r} needs scale: true (values in [0, 1])")
        test = (torch.bernoulli(test[0], generator=gen), test[1])
        if binarize == "static":
            train = (torch.bernoulli(train[0], generator=gen), train[1])
    return ImageData(name, train[0], train[1], test[0], test[1], num_classes, binarize)
