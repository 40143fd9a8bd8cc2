"""The ELBO's parts, and the split of the average KL into mutual information and marginal KL.

    ELBO = E_x E_q[log p(x|z)] − E_x KL(q(z|x)‖p(z))                      (reconstruction − KL)
    E_x KL(q(z|x)‖p(z)) = I_q(x; z) + KL(q(z)‖p(z))                       (Hoffman & Johnson, 2016)

with x uniform over the N evaluation points and q(z) = (1/N) Σ_n q(z|x_n) the aggregated posterior.
Estimator: draw z_{s,n} ~ q(z|x_n), s = 1..S, and evaluate the mixture exactly over all N points,

    log q(z_{s,n}) = logsumexp_m log q(z_{s,n}|x_m) − log N
    I_q      ≈ mean_{s,n} [log q(z_{s,n}|x_n) − log q(z_{s,n})]     ∈ [0, log N]
    KL(q‖p)  ≈ mean_{s,n} [log q(z_{s,n}) − log p(z_{s,n})]

so the two parts add up exactly to the same samples' estimate of E_x KL(q(z|x)‖p(z)). The upper
bound log N holds for every sample (q(z) ≥ q(z|x_n)/N); I_q ≥ 0 holds in expectation. Cost
O(S·N²·D) time, computed in row blocks so memory stays O(block · N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import pyro.distributions as dist
import torch
from pyro.distributions.kl import kl_divergence
from torch import Tensor, nn

from ..data.dataset import Dataset
from ..models.base import LatentModel
from .loglik import test_log_likelihood

BLOCK_ELEMENTS = 1 << 24  # rows × N × D floats per block of the mixture evaluation


@dataclass
class KLSplit:
    """Per-datapoint nats: ``kl`` = ``mutual_info`` + ``marginal_kl`` (same samples)."""

    mutual_info: float
    marginal_kl: float
    kl: float
    num_points: int

    @property
    def log_num_points(self) -> float:
        return math.log(self.num_points)


def has_unconditional_encoder(model: nn.Module) -> bool:
    """An unconditional :class:`~pyro_vae.models.base.LatentModel` (encoder ``encode``: posterior mean, std;
    prior density ``prior.log_prob``) whose guide is a distribution, not a point mass."""
    return isinstance(model, LatentModel) and model.cond_dim == 0 and not model.point_estimate


def supports_kl_split(model: nn.Module) -> bool:
    """:func:`has_unconditional_encoder`, with q(z|x) the Gaussian N(encode(x)) (not, e.g., a GMVAE's mixture)."""
    return has_unconditional_encoder(model) and model.gaussian_posterior


@torch.no_grad()
def aggregate_log_q(z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """log q(z) = logsumexp_m log N(z; μ_m, σ_m²) − log N for each row of ``z`` (R, D); μ, σ of shape (N, D)."""
    n, d = loc.shape
    block = max(1, BLOCK_ELEMENTS // (n * d))
    out = []
    for zb in z.split(block):
        lp = dist.Normal(loc, scale).log_prob(zb.unsqueeze(-2)).sum(-1)  # (block, N)
        out.append(torch.logsumexp(lp, -1) - math.log(n))
    return torch.cat(out)


@torch.no_grad()
def kl_split(model: nn.Module, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1,
             batch_size: int = 1000) -> KLSplit:
    """Mutual information I_q(x;z) and KL(q(z)‖p(z)) over the points ``x`` (see the module docstring)."""
    stats = [model.encode(xb, None if y is None else yb)
             for xb, yb in zip(x.split(batch_size), (y if y is not None else x).split(batch_size))]
    loc, scale = torch.cat([s[0] for s in stats]), torch.cat([s[1] for s in stats])
    q = dist.Normal(loc, scale).to_event(1)
    z = q.sample((num_samples,))  # (S, N, D)
    log_q_own = q.log_prob(z)  # (S, N)
    log_q_agg = aggregate_log_q(z.reshape(-1, z.shape[-1]), loc, scale).reshape(log_q_own.shape)
    log_p = model.prior.log_prob(z)
    mi = float((log_q_own - log_q_agg).mean())
    marginal = float((log_q_agg - log_p).mean())
    return KLSplit(mi, marginal, float((log_q_own - log_p).mean()), x.shape[0])


def analytic_kl(model: nn.Module, x: Tensor, y: Optional[Tensor] = None) -> Optional[Tensor]:
    """KL(q(z|x)‖p(z)) per datapoint in closed form, or None when the prior has none (e.g. a mixture)."""
    if not supports_kl_split(model):
        return None
    loc, scale = model.encode(x, y)
    try:
        return kl_divergence(dist.Normal(loc, scale).to_event(1), model.prior.distribution())
    except NotImplementedError:
        return None


@torch.no_grad()
def elbo_parts(model: nn.Module, data: Dataset, num_samples: int = 10, batch_size: int = 500,
               split: str = "test") -> Dict[str, float]:
    """Per-datapoint ``reconstruction`` E_q[log p(x|z)], ``kl`` E_q[log q(z|x) − log p(z)] and ``elbo`` =
    reconstruction − kl, Monte Carlo with ``num_samples`` z per x; ``kl_analytic`` where a closed form exists."""
    ll = test_log_likelihood(model, data, num_samples, batch_size, split)
    parts = {"reconstruction": float(ll.reconstruction.mean()), "kl": float(ll.kl.mean()), "elbo": float(ll.elbo.mean())}
    exact = [analytic_kl(model, x, y) for x, y in data.batches(split, batch_size)]
    if all(e is not None for e in exact):
        parts["kl_analytic"] = float(torch.cat(exact).mean())
    return parts
