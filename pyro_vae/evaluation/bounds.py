"""Held-out bounds on log p(x), averaged per datapoint (nats; higher is better)."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from ..data.dataset import Dataset
from ..fast import log_weights
from .loglik import log_likelihood_batch


@torch.no_grad()
def elbo_and_iwae(model: nn.Module, data: Dataset, num_samples: int = 10, batch_size: int = 500,
                  split: str = "test", chunk_size: Optional[int] = None) -> Dict[str, float]:
    """``elbo`` = mean_k log w_k and ``iwae`` = log mean_k w_k, per datapoint, with K = ``num_samples`` drawn
    ``chunk_size`` at a time (:func:`~pyro_vae.evaluation.loglik.log_likelihood_batch`: memory bounded for any K)."""
    weights = log_weights(model)
    elbo = iwae = 0.0
    count = 0
    for x, y in data.batches(split, batch_size):
        ll = log_likelihood_batch(model, x, y, num_samples, chunk_size, weights=weights)
        elbo = elbo + ll.elbo.sum()
        iwae = iwae + ll.log_px.sum()
        count += x.shape[0]
    return {"elbo": float(elbo) / count, "iwae": float(iwae) / count}


def test_elbo(model: nn.Module, data: Dataset, num_samples: int = 10, batch_size: int = 500) -> float:
    """Per-datapoint ELBO on the test split, E_q[log p(x,z) − log q(z|x)] with ``num_samples`` z per x."""
    return elbo_and_iwae(model, data, num_samples, batch_size)["elbo"]
