"""Per-datapoint log importance weights log p(x,z_k) − log q(z_k|x), vectorized over K samples.

These carry every Monte-Carlo estimate the library reports: the ELBO (mean over k), the IWAE bound
and importance-sampled log-likelihood (``logsumexp_k − log K``), and the ELBO's parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch import Tensor


@dataclass
class LogWeights:
    """Per-site log densities, each of shape ``(K, B)``: ``model`` from p, ``guide`` from q."""

    model: Dict[str, Tensor]
    guide: Dict[str, Tensor]

    @property
    def log_joint(self) -> Tensor:
        return sum(self.model.values())

    @property
    def log_q(self) -> Tensor:
        return sum(self.guide.values())

    @property
    def total(self) -> Tensor:
        """log w_k = log p(x, z_k) − log q(z_k|x), shape ``(K, B)``."""
        return self.log_joint - self.log_q


def _site_log_probs(trace: poutine.Trace, shape: torch.Size) -> Dict[str, Tensor]:
    trace.compute_log_prob()
    return {
        name: site["log_prob"].expand(shape)
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site)
    }


def log_weights(model: Callable, guide: Callable, *args, num_samples: int, max_plate_nesting: int = 1,
                **kwargs) -> LogWeights:
    """Draw ``num_samples`` z per datapoint from the guide in one vectorized pass and score them.

    The data plate must be the model's outermost plate at dim -1; the particles plate is added at
    ``dim = -(max_plate_nesting + 1)``.
    """
    with torch.no_grad(), pyro.plate("particles", num_samples, dim=-(max_plate_nesting + 1)):
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    batch = next(s["fn"].batch_shape for s in model_trace.nodes.values() if s["type"] == "sample" and s["is_observed"])
    shape = torch.Size([num_samples, batch[-1]])
    # A latent site of the model that the guide lacks (e.g. an explicit mixture component y) is proposed
    # from the model itself: q(y) = p(y), so its ratio cancels and it carries no weight.
    model_only = [name for name, site in model_trace.nodes.items() if site["type"] == "sample"
                  and not site["is_observed"] and not site_is_subsample(site) and name not in guide_trace.nodes]
    for name in model_only:
        model_trace.remove_node(name)
    return LogWeights(_site_log_probs(model_trace, shape), _site_log_probs(guide_trace, shape))
