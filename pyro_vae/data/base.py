"""The data interface the trainer, evaluation and pictures use, and the in-memory dataset behind it.

**The batch convention.** Every dataset yields batches ``(x, y)``:

* ``x``: float tensor ``(B, *shape)`` — images ``(B, C, H, W)`` or vectors ``(B, D)``;
* ``y``: the class labels, a long tensor ``(B,)`` (all zeros when the data has no labels), **or**, for a
  dataset with covariates (``covariate_dim > 0``), the per-datapoint covariate vector c, a float tensor
  ``(B, C)`` with ``C == covariate_dim``. A dataset with both keeps its labels for pictures only
  (:meth:`Dataset.labels`).

Two implementations: :class:`ImageData` (tensors in memory, batches sliced from them: the fast path) and
:class:`~pyro_vae.data.streaming.StreamData` (a ``torch.utils.data.Dataset`` read through a ``DataLoader``
with workers, for data larger than memory). Both draw the epoch's order as ``torch.randperm(N, generator)``,
so on the same data and seed they give the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import Tensor

from ..config.schema import fraction, opt, positive
from ..config.validators import non_negative
from ..errors import ConfigError, DataError
from .labels import choose_labeled, hidden_indices, mixed_batch_indices, seen_labels


Split = Literal["train", "test"]
Batch = Tuple[Tensor, Tensor]


@dataclass
class DataConfigBase:
    """Options shared by every dataset."""

    test_fraction: float = opt(0.1, "fraction held out as the test split", fraction, "a number in (0, 1)")
    binarize: Literal["none", "dynamic", "static"] = opt(
        "dynamic", "dynamic: fresh Bernoulli draw per batch; static: once; test set is always drawn once"
    )
    scale: bool = opt(True, "scale pixel values to [0, 1]")
    limit: Optional[int] = opt(None, "use at most this many images (before the split)", positive, "an integer >= 1")
    validation: Optional[float] = opt(
        None, "hold out this fraction of the training split as the run's held-out set instead of the test split "
              "(for choosing settings, e.g. pyro-vae tune; the test split is then not read); null: off",
        fraction, "a number in (0, 1) or null")
    labeled: Optional[int] = opt(
        None, "semi-supervised (model.type: m2): keep the labels of this many class-balanced training points "
              "(chosen by the seed) and hide all others, test labels included; null: every label is seen",
        positive, "an integer >= 1")
    labeled_per_batch: int = opt(
        16, "with labeled: labelled points added to every training batch (cycled through the labelled set, "
            "so few labels recur often); 0: they are shuffled in with the rest", non_negative, "an integer >= 0")


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
    #: the training split's per-feature standardisation (None: the data as read)
    standardizer: Optional["Standardizer"]

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

    def batches(self, split: Split, batch_size: int, shuffle: bool = False,
                generator: Optional[torch.Generator] = None, skip: int = 0) -> Iterator[Batch]: ...

    def validate(self, check: Callable[[Tensor], None]) -> None: ...

    def to(self, device: torch.device) -> "Dataset": ...


@dataclass
class Standardizer:
    """Per-feature standardisation x' = (x − μ) / s with the training split's mean μ and std s (s = 1 where
    a feature is constant); :meth:`undo` maps model outputs back to the data's units: x = μ + s·x'."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, x: Tensor, keep: Optional[Tensor] = None) -> "Standardizer":
        """From the observed (non-NaN) values of each feature; ``keep``: features left as they are (μ = 0, s = 1)."""
        x = x.double()
        seen = ~torch.isnan(x)
        if bool(seen.all()) and keep is None:
            return cls.from_moments(x.sum(0), (x ** 2).sum(0), x.shape[0])
        count = seen.sum(0).clamp(min=1)
        x = torch.where(seen, x, torch.zeros_like(x))
        out = cls.from_moments(x.sum(0) / count, (x ** 2).sum(0) / count, 1)
        if keep is not None:
            out.mean, out.std = out.mean.masked_fill(keep, 0.0), out.std.masked_fill(keep, 1.0)
        return out

    @classmethod
    def from_moments(cls, total: Tensor, total_sq: Tensor, count: int) -> "Standardizer":
        """From running sums Σx and Σx² over ``count`` rows (a streamed pass), in float64."""
        mean = total / count
        std = (total_sq / count - mean ** 2).clamp(min=0).sqrt()
        return cls(mean.float(), torch.where(std > 0, std, torch.ones_like(std)).float())

    def apply(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def undo(self, x: Tensor) -> Tensor:
        return x * self.std.to(x.device) + self.mean.to(x.device)

    def to_dict(self) -> Dict[str, List[float]]:
        """Plain lists (what a checkpoint stores under ``data_stats``)."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "shape": list(self.mean.shape)}

    @classmethod
    def from_dict(cls, d: Dict[str, List[float]]) -> "Standardizer":
        shape = tuple(d.get("shape", [len(d["mean"])]))
        return cls(torch.tensor(d["mean"]).reshape(shape), torch.tensor(d["std"]).reshape(shape))


def check_finite(x: Tensor, what: str) -> None:
    """DataError naming ``what`` and the first datapoint holding NaN or ±inf."""
    bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1) if x.dim() > 1 else ~torch.isfinite(x)
    if bool(bad.any()):
        raise DataError(f"{what}: row {int(bad.nonzero()[0, 0])} holds NaN or inf values "
                        f"({int(bad.sum())} rows in all); expected finite numbers")


def check_labels(y: Tensor, what: str) -> int:
    """Integer class labels 0..K−1 with at least two classes; returns K. A DataError names ``what``."""
    if y.dtype.is_floating_point:
        if not torch.isfinite(y).all() or not bool((y == y.round()).all()):
            raise DataError(f"{what}: labels must be integers 0..K-1, got non-integer values")
    y = y.long()
    if y.numel() == 0:
        raise DataError(f"{what}: no labels")
    if int(y.min()) < 0:
        raise DataError(f"{what}: label {int(y.min())} is negative; expected integers 0..K-1")
    k = int(y.max()) + 1
    if len(torch.unique(y)) < 2:
        raise DataError(f"{what}: all labels are {int(y[0])} (one class); expected at least two classes, "
                        "or leave the label out")
    return k


@dataclass
class ImageData:
    """Data in memory: ``(N, *shape)`` float tensors (images ``(N, C, H, W)`` or vectors ``(N, D)``) with
    ``y`` per the batch convention, split into train and test. Satisfies :class:`Dataset`."""

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

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test_x.shape[0])

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

    def to(self, device: torch.device) -> "ImageData":
        keys = ("train_x", "train_y", "test_x", "test_y", "train_labels", "test_labels")
        move = {k: getattr(self, k) for k in keys}
        move = {k: v.to(device) if v is not None else None for k, v in move.items()}
        labeled = None if self.labeled is None else self.labeled.to(device)
        return ImageData(self.name, num_classes=self.num_classes, binarize=self.binarize,
                         covariate_dim=self.covariate_dim, standardizer=self.standardizer, labeled=labeled,
                         labeled_per_batch=self.labeled_per_batch, columns=self.columns,
                         class_names=self.class_names, **move)

    def _mixing(self, split: str, shuffle: bool) -> bool:
        """Training batches of hidden-label points, each topped up with ``labeled_per_batch`` labelled ones."""
        return (split == "train" and shuffle and self.labeled is not None and self.labeled_per_batch > 0
                and 0 < self.labeled.numel() < self.train_x.shape[0])

    def num_batches(self, split: Split, batch_size: int, shuffle: bool = False) -> int:
        """How many batches :meth:`batches` yields (one epoch)."""
        if self._mixing(split, shuffle):
            return math.ceil((self.train_x.shape[0] - self.labeled.numel()) / batch_size)
        return math.ceil((self.train_x if split == "train" else self.test_x).shape[0] / batch_size)

    def batches(
        self, split: Split, batch_size: int, shuffle: bool = False,
        generator: Optional[torch.Generator] = None, skip: int = 0,
    ) -> Iterator[Batch]:
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


def split_order(n: int, config: DataConfigBase, seed: int, name: str,
                noun: str = "datapoints") -> Tuple[Tensor, Tensor, torch.Generator]:
    """Train and test row indices: a seeded permutation of ``n`` rows, cut to ``limit``, the first
    ``test_fraction`` held out. Returns the generator too (its later draws binarize the test split)."""
    if n == 0:
        raise DataError(f"dataset {name!r} is empty")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if config.limit is not None:
        order = order[: config.limit]
    n_test = max(1, int(round(config.test_fraction * order.shape[0])))
    if n_test >= order.shape[0]:
        raise DataError(f"dataset {name!r}: {order.shape[0]} {noun} leave none for training "
                        f"with test_fraction={config.test_fraction}")
    train, test = order[n_test:], order[:n_test]
    if getattr(config, "validation", None) is not None:
        train, test = validation_split(train, config, name)
    return train, test, gen


def validation_split(train: Tensor, config: Any, name: str) -> Tuple[Tensor, Tensor]:
    """``data.validation``: the first ``validation`` fraction of the (shuffled) training rows become the held-out
    rows, the test split is not read: ``(train rows, validation rows)``."""
    n_val = max(1, int(round(config.validation * train.shape[0])))
    if n_val >= train.shape[0]:
        raise DataError(f"dataset {name!r}: {train.shape[0]} training points leave none for training with "
                        f"validation={config.validation}")
    return train[n_val:], train[:n_val]


def make_image_data(
    name: str, images: Tensor, labels: Optional[Tensor], config: DataConfigBase, seed: int,
    max_value: float, test: Optional[Tuple[Tensor, Tensor]] = None, num_classes: int = 10,
    covariates: Optional[Tensor] = None, standardize: bool = False,
    split: Optional[Tuple[Tensor, Tensor]] = None, class_labels: bool = True,
) -> ImageData:
    """Scale, subsample, split (``test_fraction``, or the given ``test`` split) and binarize raw data.

    ``images`` is ``(N, C, H, W)``, ``(N, H, W)`` (one channel) or vectors ``(N, D)`` of raw values in
    ``[0, max_value]`` (``max_value`` divides when ``config.scale``). ``labels``: ``(N,)`` integers or None.
    ``covariates``: ``(N, C)`` floats, carried as ``y`` (labels are then kept for pictures only).
    ``standardize``: subtract the training split's per-feature mean and divide by its std.
    ``split``: given ``(train rows, test rows)`` instead of a seeded ``test_fraction`` split.
    ``class_labels``: False when ``labels`` are no classes (e.g. bins of a position, for colouring only).
    ``config.labeled``: keep the labels of that many class-balanced training points (:func:`with_labeled`).
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if test is not None and test[0].dim() == 3:
        test = (test[0].unsqueeze(1), test[1])
    if images.shape[0] == 0:
        raise DataError(f"dataset {name!r} is empty")
    if labels is None:
        labels, num_classes = torch.zeros(images.shape[0], dtype=torch.long), 0
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"dataset {name!r}: {images.shape[0]} images but {labels.shape[0]} labels")
    if covariates is not None and covariates.shape[0] != images.shape[0]:
        raise DataError(f"dataset {name!r}: {images.shape[0]} datapoints but {covariates.shape[0]} covariate rows")
    for part, y in (("", labels), (" (test split)", test[1] if test is not None else labels)):
        if num_classes and y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DataError(f"dataset {name!r}{part}: labels in [{int(y.min())}, {int(y.max())}], expected 0..{num_classes - 1}")

    def prepare(x: Tensor) -> Tensor:
        x = x.float()
        return x / max_value if config.scale else x

    if split is not None:
        (train_idx, test_idx), gen = split, torch.Generator().manual_seed(seed)
        train = (prepare(images[train_idx]), labels[train_idx].long())
        test = (prepare(images[test_idx]), labels[test_idx].long())
    elif test is None:
        noun = "images" if images.dim() == 4 else "datapoints"
        train_idx, test_idx, gen = split_order(images.shape[0], config, seed, name, noun)
        train = (prepare(images[train_idx]), labels[train_idx].long())
        test = (prepare(images[test_idx]), labels[test_idx].long())
    else:  # an official test split: the permutation only subsamples (limit) and shuffles the training part
        gen = torch.Generator().manual_seed(seed)
        train_idx = torch.randperm(images.shape[0], generator=gen)
        if config.limit is not None:
            train_idx = train_idx[: config.limit]
        test_idx = None
        train = (prepare(images[train_idx]), labels[train_idx].long())
        test = (prepare(test[0]), test[1].long())
    if getattr(config, "validation", None) is not None and (split is not None or test_idx is None):
        train_idx, test_idx = validation_split(train_idx, config, name)  # (a test_fraction split has it already)
        train = (prepare(images[train_idx]), labels[train_idx].long())
        test = (prepare(images[test_idx]), labels[test_idx].long())
    binarize = config.binarize
    if binarize != "none":
        if config.scale is False:
            raise DataError(f"dataset {name!r}: binarize={binarize!r} needs scale: true (values in [0, 1])")
        test = (torch.bernoulli(test[0], generator=gen), test[1])
        if binarize == "static":
            train = (torch.bernoulli(train[0], generator=gen), train[1])
    standardizer = None
    if standardize:
        if binarize != "none":
            raise DataError(f"dataset {name!r}: standardize: true needs binarize: none")
        standardizer = Standardizer.fit(train[0])
        train, test = (standardizer.apply(train[0]), train[1]), (standardizer.apply(test[0]), test[1])
    labeled = getattr(config, "labeled", None)
    if labeled is not None and (covariates is not None or not class_labels or not num_classes):
        raise ConfigError(f"data.labeled: dataset {name!r} has no class labels to keep (semi-supervised "
                          "training needs class labels, not covariates or position bins)")
    if covariates is None:
        data = ImageData(name, train[0], train[1], test[0], test[1], num_classes, binarize,
                         standardizer=standardizer)
        if labeled is not None:
            data = with_labeled(data, labeled, config.labeled_per_batch, seed)
        return data
    if test_idx is None:
        raise DataError(f"dataset {name!r}: covariates need a split by test_fraction or given rows")
    cov = covariates.float()
    return ImageData(name, train[0], cov[train_idx], test[0], cov[test_idx], num_classes, binarize,
                     covariate_dim=int(cov.shape[1]), train_labels=train[1] if num_classes else None,
                     test_labels=test[1] if num_classes else None, standardizer=standardizer)


def with_labeled(data: ImageData, count: int, per_batch: int, seed: int) -> ImageData:
    """``data`` with the labels of ``count`` class-balanced training points seen and every other label hidden."""
    data.labeled = choose_labeled(data.train_y, count, data.num_classes, seed)
    data.labeled_per_batch = per_batch
    return data
