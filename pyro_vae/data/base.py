"""The options every dataset reader shares (:class:`DataConfigBase`) and those of the file readers
(:class:`FileDataConfig`: memory or streaming, standardisation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

from ..config.schema import fraction, opt, positive
from ..config.validators import non_negative


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


@dataclass
class FileDataConfig(DataConfigBase):
    """Options shared by the file readers (array, table, image_folder) and data given from Python."""

    path: str = opt("", "the data file (or folder); relative paths are resolved when the run starts")
    binarize: Literal["none", "dynamic", "static"] = opt("none", "none for real values; dynamic/static for [0, 1] data")
    scale: bool = opt(False, "divide by the dtype's maximum (255 for uint8), mapping 8-bit values to [0, 1]")
    standardize: bool = opt(False, "subtract the training split's per-feature mean and divide by its std "
                                   "(stored in the run; samples are mapped back)")
    in_memory: Union[bool, Literal["auto"]] = opt(
        "auto", "true: load everything; false: stream through a DataLoader; auto: stream when the data "
                "would take over half the available memory")
    num_workers: int = opt(2, "DataLoader worker processes when streaming", non_negative, "an integer >= 0")
