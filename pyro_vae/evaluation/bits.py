"""Bits per dimension: a log-probability mass in nats per datapoint as a code length per data dimension.

    bits/dim = −log p(x) / (D · ln 2)

D is the number of dimensions the ``x`` site scores (a quadrant CVAE: the hidden pixels only). It is a code
length only when p(x|·) is a probability mass on the values x takes: the model's likelihood declares
``levels`` (discretized logistic, categorical: L grey levels; Bernoulli: {0, 1}) and the data lie on that grid.
A density (gaussian, laplace, continuous Bernoulli), or a Bernoulli scoring grey values as soft targets, gets none.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Optional

from torch import Tensor, nn

from ..likelihoods.base import on_grid
from ..models.base import GenerativeModel

#: the report's bounds (nats per datapoint) that get a ``<key>_bits_per_dim`` beside them
BOUND_KEYS = ("test_elbo", "test_iwae", "test_log_likelihood")


def bits_per_dim(log_px: float, dims: int) -> float:
    """−log p(x) / (D ln 2) for log p(x) in nats per datapoint over D scored dimensions."""
    return -log_px / (dims * math.log(2.0))


def coded_dims(model: nn.Module, batches: Iterable[Tensor]) -> Optional[int]:
    """D when ``model``'s log p(x) is a log-probability mass of every x in ``batches`` (its likelihood has
    ``levels`` and the data lie on that grid); None otherwise (a density, grey values under a Bernoulli)."""
    if not isinstance(model, GenerativeModel) or model.point_estimate:  # (a MAP objective is no bound)
        return None
    levels = model.discrete_levels
    if levels is None or not all(on_grid(x, levels) for x in batches):
        return None
    return model.scored_dims()


def add_bits_per_dim(report: Dict[str, Any], dims: Optional[int], keys: Iterable[str] = BOUND_KEYS) -> Dict[str, Any]:
    """``report`` with ``<key>_bits_per_dim`` beside each bound ``key`` it has, and ``scored_dims`` = D;
    unchanged when ``dims`` is None."""
    if dims is None:
        return report
    for key in [k for k in keys if k in report]:
        report[f"{key}_bits_per_dim"] = bits_per_dim(report[key], dims)
    report["scored_dims"] = dims
    return report
