"""Per-feature standardisation by the training split's moments, and its inverse for model outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor


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
