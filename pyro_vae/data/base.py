"""The in-memory image dataset every loader returns, its held-out split and its batching."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Iterator, Literal, Optional, Tuple

import torch
from torch import Tensor

from ..config.schema import fraction, opt, positive
from ..errors import ConfigError, DataError
from .labels import choose_labeled, hidden_indices, mixed_batch_indices, seen_labels


def _non_negative(x) -> bool:
    return x is not None and x >= 0


@dataclass
class DataConfigBase:
    """Options shared by every dataset."""

    test_fraction: float = opt(0.1, "fraction held out as the test split", fraction, "a number in (0, 1)")
    binarize: Literal["none", "dynamic", "static"] = opt(
        "dynamic", "dynamic: fresh Bernoulli draw per batch; static: once; test set is always drawn once"
    )
    scale: bool = opt(True, "scale pixel values to [0, 1]")
    limit: Optional[int] = opt(None, "use at most this many images (before the split)", positive, "an integer >= 1")
    labeled: Optional[int] = opt(
        None, "semi-supervised (model.type: m2): keep the labels of this many class-balanced training points "
              "(chosen by the seed) and hide all others, test labels included; null: every label is seen",
        positive, "an integer >= 1")
    labeled_per_batch: int = opt(
        16, "with labeled: labelled points added to every training batch (cycled through the labelled set, "
            "so few labels recur often); 0: they are shuffled in with the rest", _non_negative, "an integer >= 0")


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
    #: semi-supervised: indices of the training points whose labels the model sees (None: all of them);
    #: batches carry y = −1 for every hidden label (the test split's included). train_y/test_y stay true.
    labeled: Optional[Tensor] = None
    labeled_per_batch: int = 0

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device) -> "ImageData":
        move = {k: getattr(self, k).to(device) for k in ("train_x", "train_y", "test_x", "test_y")}
        labeled = None if self.labeled is None else self.labeled.to(device)
        return ImageData(self.name, num_classes=self.num_classes, binarize=self.binarize, labeled=labeled,
                         labeled_per_batch=self.labeled_per_batch, **move)

    def _mixing(self, split: str, shuffle: bool) -> bool:
        """Training batches of hidden-label points, each topped up with ``labeled_per_batch`` labelled ones."""
        return (split == "train" and shuffle and self.labeled is not None and self.labeled_per_batch > 0
                and 0 < self.labeled.numel() < self.train_x.shape[0])

    def num_batches(self, split: Literal["train", "test"], batch_size: int, shuffle: bool = False) -> int:
        """How many batches :meth:`batches` yields (one epoch)."""
        if self._mixing(split, shuffle):
            return math.ceil((self.train_x.shape[0] - self.labeled.numel()) / batch_size)
        return math.ceil((self.train_x if split == "train" else self.test_x).shape[0] / batch_size)

    def batches(
        self, split: Literal["train", "test"], batch_size: int, shuffle: bool = False,
        generator: Optional[torch.Generator] = None, skip: int = 0,
    ) -> Iterator[Tuple[Tensor, Tensor]]:
        """Yield ``(x, y)`` batches; training batches are re-binarized each time when ``binarize: dynamic``.

        ``skip``: leave out the first ``skip`` batches of this order without drawing anything for them
        (resuming an epoch that was interrupted after ``skip`` steps).
        """
        x, y = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        if self.labeled is not None:  # semi-supervised: the labels the model may see, −1 where hidden
            y = seen_labels(y, self.labeled if split == "train" else None)
        n = x.shape[0]
        if self._mixing(split, shuffle):
            hidden = hidden_indices(n, self.labeled)
            indices = mixed_batch_indices(hidden, self.labeled, batch_size, self.labeled_per_batch, generator)
        else:
            order = torch.randperm(n, generator=generator).to(x.device) if shuffle else None
            indices = (order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
                       for start in range(0, n, batch_size))
        for number, idx in enumerate(indices):
            if number < skip:
                continue
            xb = x[idx]
            if split == "train" and self.binarize == "dynamic":
                xb = torch.bernoulli(xb)
            yield xb, y[idx]


def make_image_data(
    name: str, images: Tensor, labels: Tensor, config: DataConfigBase, seed: int,
    max_value: float, test: Optional[Tuple[Tensor, Tensor]] = None, num_classes: int = 10,
    class_labels: bool = True,
) -> ImageData:
    """Scale, subsample, split (``test_fraction``, or the given ``test`` split), binarize raw images and
    (``config.labeled``) choose the labelled training points.

    ``images`` is ``(N, C, H, W)`` or ``(N, H, W)`` of raw values in ``[0, max_value]``; ``class_labels``
    is False when ``labels`` are no classes (e.g. bins of a position, for colouring only).
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
    data = ImageData(name, train[0], train[1], test[0], test[1], num_classes, binarize)
    if config.labeled is not None:
        data = with_labeled(data, config.labeled, config.labeled_per_batch, seed, class_labels)
    return data


def with_labeled(data: ImageData, count: int, per_batch: int, seed: int, class_labels: bool = True) -> ImageData:
    """``data`` with the labels of ``count`` class-balanced training points seen and every other label hidden."""
    if not class_labels:
        raise ConfigError(f"data.labeled: dataset {data.name!r} has no class labels to keep (its labels only "
                          "colour pictures); semi-supervised training needs a labelled dataset")
    data.labeled = choose_labeled(data.train_y, count, data.num_classes, seed)
    data.labeled_per_batch = per_batch
    return data
