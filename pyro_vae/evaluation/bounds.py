"""Held-out bounds on log p(x), averaged per datapoint (nats; higher is better)."""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from ..data.base import ImageData
from ..infer.importance import log_weights


@torch.no_grad()
def elbo_and_iwae(model: nn.Module, data: ImageData, num_samples: int = 10, batch_size: int = 500,
                  split: str = "test") -> Dict[str, float]:
    """``elbo`` = mean_k log w_k and ``iwae`` = log mean_k w_k, per datapoint, with K = ``num_samples``."""
    elbo = iwae = 0.0
    count = 0
    for x, y in data.batches(split, batch_size):
        lw = log_weights(model.model, model.guide, x, y, num_samples=num_samples,
                         max_plate_nesting=model.max_plate_nesting).total
        elbo += lw.mean(0).sum().item()
        iwae += (torch.logsumexp(lw, 0) - math.log(num_samples)).sum().item()
        count += x.shape[0]
    return {"elbo": elbo / count, "iwae": iwae / count}


def test_elbo(model: nn.Module, data: ImageData, num_samples: int = 10, batch_size: int = 500) -> float:
    """Per-datapoint ELBO on the test split, E_q[log p(x,z) − log q(z|x)] with ``num_samples`` z per x."""
    return elbo_and_iwae(model, data, num_samples, batch_size)["elbo"]
