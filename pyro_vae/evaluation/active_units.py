"""Active units (Burda et al., 2016): latent dims whose posterior mean varies with the input.

    A_d = Cov_x(E_q[z_d | x]),   dim d active iff A_d > threshold (0.01 by default)

A collapsed dim has E_q[z_d|x] ≈ prior mean for every x, hence A_d ≈ 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
from torch import Tensor, nn

from ..data.dataset import Dataset

THRESHOLD = 0.01


@dataclass
class ActiveUnits:
    variances: Tensor  # A_d, shape (D,)
    threshold: float

    @property
    def active(self) -> Tensor:
        return self.variances > self.threshold

    @property
    def count(self) -> int:
        return int(self.active.sum())

    def as_list(self) -> List[float]:
        return [float(v) for v in self.variances]


@torch.no_grad()
def active_units(model: nn.Module, data: Dataset, threshold: float = THRESHOLD, split: str = "test",
                 batch_size: int = 1000) -> ActiveUnits:
    """A_d = Var_x(E_q[z_d|x]) over the points of ``split`` (unbiased variance)."""
    means = torch.cat([model.encode(x, y)[0] for x, y in data.batches(split, batch_size)])
    return ActiveUnits(means.var(0), threshold)
