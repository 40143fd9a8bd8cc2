"""2-D toy manifolds (a noisy circle or spiral): points x ∈ R², data shape (2,), for DAE vector fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..config.schema import opt, positive
from ..config.validators import non_negative
from ..errors import DataError
from ..registry import DATASETS
from .base import DataConfigBase
from .dataset import Dataset
from .make import Source, make_dataset


@dataclass
class ToyConfig(DataConfigBase):
    type: str = "toy"
    manifold: Literal["circle", "spiral"] = opt("circle", "circle of radius 1, or a spiral r = t/(2π) · 0.5")
    num_points: int = opt(2000, "points drawn (before the test split)", positive, "an integer >= 1")
    noise: float = opt(0.02, "σ of isotropic Gaussian noise off the manifold", non_negative, "a number >= 0")
    num_classes: int = opt(8, "labels = position along the manifold, cut into this many bins (for colouring)",
                           positive, "an integer >= 1")
    binarize: Literal["none", "dynamic", "static"] = opt("none", "must stay none: the points are real-valued")


@DATASETS.register("toy", ToyConfig)
class Toy:
    """Points on a 2-D circle or spiral plus Gaussian noise: vectors x ∈ R² (data shape (2,)), labels = arc bin."""

    def __init__(self, config: ToyConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        c = self.config
        if c.binarize != "none":
            raise DataError(f"dataset 'toy': binarize={c.binarize!r} is meaningless for real-valued points; use none")
        gen = torch.Generator().manual_seed(seed)
        t = torch.rand(c.num_points, generator=gen)  # position along the manifold, in [0, 1)
        if c.manifold == "circle":
            angle, radius = 2 * math.pi * t, torch.ones_like(t)
        else:  # two turns of an Archimedean spiral, radius 0.25 .. 1.25
            angle, radius = 4 * math.pi * t, 0.25 + t
        points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], -1)
        points = points + c.noise * torch.randn(points.shape, generator=gen)
        labels = (t * c.num_classes).long().clamp(max=c.num_classes - 1)
        return make_dataset(Source(f"toy-{c.manifold}", x=points, labels=labels, num_classes=c.num_classes,
                                   class_labels=False), c, seed)
