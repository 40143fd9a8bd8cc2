"""One pipeline from a reader's rows to a :class:`~pyro_vae.data.dataset.Dataset`: :func:`make_dataset` decides
memory or streaming, splits, scales, binarizes and standardizes, for vectors and images alike.

A reader returns a :class:`Source`: its rows (a tensor in memory, or a
:class:`~pyro_vae.data.dataset.RowReader` read on demand) and their targets (labels, covariates), checked, plus
what it knows about them (the divisor of ``scale``, class names, a given split).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .base import DataConfigBase, FileDataConfig
from .checks import check_finite, check_labels
from .dataset import CHUNK_ROWS, Dataset, RowReader, split_xy
from .rowdata import MemoryData, RowData, with_labeled
from .split import split_order, validation_split
from .standardize import Standardizer
from .streaming import SplitRows, choose_in_memory, fit_standardizer


@dataclass
class Source:
    """A reader's rows and targets, before any split."""

    name: str
    #: the rows in memory, ``(N, *shape)`` (``(N, H, W)``: one channel) raw values in ``[0, max_value]``...
    x: Optional[Tensor] = None
    #: ... or a reader of them, read into memory or streamed as ``data.in_memory`` says
    reader: Optional[RowReader] = None
    labels: Optional[Tensor] = None       # (N,) integers 0..K−1
    covariates: Optional[Tensor] = None   # (N, C) floats carried as y (labels then kept for pictures)
    num_classes: int = 0
    max_value: float = 1.0                # what ``scale: true`` divides by
    standardize: bool = False             # per-feature standardisation by the training split
    #: features ``standardize`` leaves as they are (a table's non-continuous columns); None: none
    keep: Optional[Tensor] = None
    test: Optional[Tuple[Tensor, Tensor]] = None   # an official held-out split (x, labels)
    split: Optional[Tuple[Tensor, Tensor]] = None  # given (train rows, test rows) instead of test_fraction
    class_labels: bool = True             # False: labels are no classes (bins of a position, for colouring)
    class_names: Optional[List[str]] = None
    columns: Optional[list] = None        # a table's column specs
    where: str = ""                       # what error messages name (default: name)


def make_dataset(source: Source, config: DataConfigBase, seed: int) -> Dataset:
    """The dataset of ``source``: a reader is streamed when ``data.in_memory`` (or its ``auto`` rule) says so and
    read into memory otherwise; either way one :class:`~pyro_vae.data.rowdata.RowData`."""
    if source.reader is not None:
        if not isinstance(config, FileDataConfig) or choose_in_memory(config.in_memory, source.reader.nbytes()):
            try:
                return in_memory(read_all(source), config, seed)
            except (MemoryError, RuntimeError) as e:  # torch's allocator says RuntimeError
                if isinstance(e, RuntimeError) and "allocate memory" not in str(e):
                    raise
                reader = source.reader
                raise DataError(f"{source.where or source.name}: {len(reader)} rows of shape {reader.shape} do not fit "
                                "in memory; set data.in_memory: false (or auto) to stream them") from None
        return streamed(source, config, seed)
    return in_memory(source, config, seed)


def read_all(source: Source) -> Source:
    """``source`` with its reader's rows read into memory (in chunks); a reader that carries its own targets
    gives labels (integers) or covariates (floats)."""
    reader, where = source.reader, source.where or source.name
    n = len(reader)
    try:
        x = torch.empty((n, *reader.shape))
    except (MemoryError, RuntimeError):  # torch's allocator says RuntimeError
        raise DataError(f"{where}: {n} rows of shape {reader.shape} do not fit in memory; set data.in_memory: "
                        "false (or auto) to stream them") from None
    targets = []
    for start in range(0, n, CHUNK_ROWS):
        xb, yb = split_xy(reader.read(np.arange(start, min(start + CHUNK_ROWS, n))))
        x[start:start + xb.shape[0]] = xb
        targets.append(yb)
    check_finite(x, where)
    if not targets or targets[0] is None:
        return replace(source, x=x, reader=None)
    y = torch.cat(targets)
    if y.is_floating_point():
        covariates = y.reshape(n, -1).float()
        check_finite(covariates, f"{where} covariates")
        return replace(source, x=x, reader=None, covariates=covariates)
    return replace(source, x=x, reader=None, labels=y.long(), num_classes=check_labels(y, f"{where} labels"))


def streamed(source: Source, config: FileDataConfig, seed: int) -> RowData:
    """``source``'s reader read through a DataLoader, split as the in-memory path splits."""
    name, reader = source.name, source.reader
    if config.binarize == "static":
        raise DataError("data.binarize: static needs in_memory: true (a streamed dataset re-binarizes per batch)")
    if config.binarize != "none" and source.standardize:
        raise DataError(f"dataset {name!r}: standardize: true needs binarize: none")
    n = len(reader)
    y = source.labels if source.labels is not None else torch.zeros(n, dtype=torch.long)
    cov_dim, labels = 0, (source.labels if source.num_classes else None)  # class labels for pictures
    if source.covariates is not None:  # batches carry the covariates; the labels stay for pictures
        y, cov_dim = source.covariates, int(source.covariates.shape[1])
    elif reader.target_width is not None:  # each item carries its y: labels (0) or covariates (C)
        y, cov_dim = None, reader.target_width
    noun = "images" if len(reader.shape) == 3 else "datapoints"
    rows = ((*source.split, torch.Generator().manual_seed(seed)) if source.split is not None
            else split_order(n, config, seed, name, noun))
    train, test = (SplitRows(reader, r, y, source.max_value if config.scale else 1.0) for r in rows[:2])
    if source.standardize:
        train.standardizer = test.standardizer = fit_standardizer(train)
    return RowData(name, train, test, source.num_classes, config.binarize, covariate_dim=cov_dim,
                   standardizer=train.standardizer,
                   train_labels=None if labels is None else labels[rows[0]],
                   test_labels=None if labels is None else labels[rows[1]], num_workers=config.num_workers,
                   test_generator=rows[2], class_names=source.class_names)


def in_memory(source: Source, config: DataConfigBase, seed: int) -> RowData:
    """Scale, subsample, split (``test_fraction``, the given rows, or the given ``test`` split), binarize and
    standardize rows held in memory; ``config.labeled`` keeps the labels of that many class-balanced training
    points (:func:`~pyro_vae.data.rowdata.with_labeled`)."""
    name, images, labels, num_classes, test = source.name, source.x, source.labels, source.num_classes, source.test
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
    covariates = source.covariates
    if covariates is not None and covariates.shape[0] != images.shape[0]:
        raise DataError(f"dataset {name!r}: {images.shape[0]} datapoints but {covariates.shape[0]} covariate rows")
    for part, y in (("", labels), (" (test split)", test[1] if test is not None else labels)):
        if num_classes and y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DataError(f"dataset {name!r}{part}: labels in [{int(y.min())}, {int(y.max())}], expected 0..{num_classes - 1}")

    def rows(index: Tensor) -> Tuple[Tensor, Tensor]:
        x = images[index].float()
        return (x / source.max_value if config.scale else x), labels[index].long()

    if source.split is not None:
        (train_idx, test_idx), gen = source.split, torch.Generator().manual_seed(seed)
    elif test is None:
        noun = "images" if images.dim() == 4 else "datapoints"
        train_idx, test_idx, gen = split_order(images.shape[0], config, seed, name, noun)
    else:  # an official test split: the permutation only subsamples (limit) and shuffles the training part
        gen = torch.Generator().manual_seed(seed)
        train_idx = torch.randperm(images.shape[0], generator=gen)
        if config.limit is not None:
            train_idx = train_idx[: config.limit]
        test_idx = None
    if config.validation is not None and (source.split is not None or test_idx is None):
        train_idx, test_idx = validation_split(train_idx, config, name)  # (a test_fraction split has it already)
    train = rows(train_idx)
    if test_idx is not None:
        test = rows(test_idx)
    else:
        x = test[0].float()
        test = ((x / source.max_value if config.scale else x), test[1].long())
    binarize = config.binarize
    if binarize != "none":
        if config.scale is False:
            raise DataError(f"dataset {name!r}: binarize={binarize!r} needs scale: true (values in [0, 1])")
        test = (torch.bernoulli(test[0], generator=gen), test[1])
        if binarize == "static":
            train = (torch.bernoulli(train[0], generator=gen), train[1])
    standardizer = None
    if source.standardize:
        if binarize != "none":
            raise DataError(f"dataset {name!r}: standardize: true needs binarize: none")
        standardizer = Standardizer.fit(train[0], keep=source.keep)
        train, test = (standardizer.apply(train[0]), train[1]), (standardizer.apply(test[0]), test[1])
    if config.labeled is not None and (covariates is not None or not source.class_labels or not num_classes):
        raise ConfigError(f"data.labeled: dataset {name!r} has no class labels to keep (semi-supervised "
                          "training needs class labels, not covariates or position bins)")
    extra = dict(binarize=binarize, standardizer=standardizer, columns=source.columns,
                 class_names=source.class_names)
    if covariates is None:
        data = MemoryData(name, train[0], train[1], test[0], test[1], num_classes, **extra)
        if config.labeled is not None:
            data = with_labeled(data, config.labeled, config.labeled_per_batch, seed)
        return data
    if test_idx is None:
        raise DataError(f"dataset {name!r}: covariates need a split by test_fraction or given rows")
    cov = covariates.float()
    return MemoryData(name, train[0], cov[train_idx], test[0], cov[test_idx], num_classes,
                     covariate_dim=int(cov.shape[1]), train_labels=train[1] if num_classes else None,
                     test_labels=test[1] if num_classes else None, **extra)
