"""Fused sample-and-score kernels for the one-pass ELBO (:mod:`pyro_vae.infer.fused`).

Each kernel gives what ``Distribution.rsample``/``log_prob`` give (same random numbers, same value up to
float round-off), summed over the site with its plate scale and mask, in fewer tensor ops:

* Gaussian draw:  z = μ + σ⊙ε (the ε ``Normal.rsample`` draws),  Σ log q(z) = Σ −½ε² − log σ − ½ log 2π
* Gaussian score:  −Σ log N(v; μ, σ) = Σ ½((v − μ)/σ)² + log σ + ½ log 2π
* standard Gaussian score (a ``Normal`` whose class sets ``standard = True``, e.g. the N(0, I) prior):
  −Σ log N(v; 0, 1) = Σ ½v² + ½ log 2π
* Bernoulli(logits ℓ) score:  −Σ log p(x) = BCEWithLogits(ℓ, x, reduction="sum")

Any other family goes through its own ``rsample``/``log_prob``. A score is returned as ``(tensor, constant)``
so that the constants of all sites (the ±½ log 2π terms) are added once, as one Python number.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from pyro.distributions.util import scale_and_mask
from torch import Tensor
from torch.distributions import Bernoulli, Independent, Normal
from torch.distributions.utils import _standard_normal, _sum_rightmost

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _is(fn: Any, family: type) -> bool:
    """``fn`` is ``family`` itself or Pyro's thin wrapper of it (not a subclass that changes its behaviour)."""
    return type(fn) is family or type(fn).__mro__[1] is family


def unwrap_independent(fn: Any) -> Tuple[Any, int]:
    """The base distribution under (nested) ``Independent`` wrappers and how many dims they reinterpret."""
    ndims = 0
    while _is(fn, Independent):
        ndims += fn.reinterpreted_batch_ndims
        fn = fn.base_dist
    return fn, ndims


def _plain(scale: Any, mask: Optional[Tensor]) -> bool:
    """No plate scale and no mask: the site's terms can be summed in one reduction."""
    return mask is None and isinstance(scale, (int, float)) and scale == 1.0


Score = Tuple[Tensor, float]  # (a scalar tensor, a Python constant): the site's summed term is their sum


def _site_sum(elementwise: Tensor, constant: float, ndims: int, scale: Any, mask: Optional[Tensor]) -> Score:
    """Σ scale·mask·(Σ_event elementwise + event_size·constant), for an elementwise density term."""
    if _plain(scale, mask):
        return elementwise.sum(), elementwise.numel() * constant
    event_size = math.prod(elementwise.shape[elementwise.dim() - ndims:])
    per_point = _sum_rightmost(elementwise, ndims) + event_size * constant
    return scale_and_mask(per_point, scale, mask).sum(), 0.0


def rsample_scored(fn: Any) -> Tuple[Tensor, Callable[[Any, Optional[Tensor]], Score]]:
    """A reparameterized draw ``z ~ fn`` and ``log_q(scale, mask)`` = Σ scale·mask·log fn(z)."""
    base, ndims = unwrap_independent(fn)
    if _is(base, Normal):
        loc, scale = base.loc, base.scale
        eps = _standard_normal(base._extended_shape(), dtype=loc.dtype, device=loc.device)  # as Normal.rsample
        z = loc + eps * scale
        return z, lambda s, m: _site_sum(-0.5 * eps.square() - scale.log(), -HALF_LOG_2PI, ndims, s, m)
    z = fn.rsample()
    return z, lambda s, m: (scale_and_mask(fn.log_prob(z), s, m).sum(), 0.0)


def neg_log_prob_sum(fn: Any, value: Tensor, scale: Any, mask: Optional[Tensor], args: tuple = (),
                     kwargs: Optional[dict] = None) -> Score:
    """−Σ scale·mask·log fn(value) (minus what ``Trace.log_prob_sum`` adds for one site)."""
    if not args and not kwargs:
        base, ndims = unwrap_independent(fn)
        if _is(base, Bernoulli) and "logits" in base.__dict__ and _plain(scale, mask):
            logits = base.logits
            if logits.shape != value.shape:
                logits, value = torch.broadcast_tensors(logits, value)
            return F.binary_cross_entropy_with_logits(logits, value, reduction="sum"), 0.0
        if getattr(base, "standard", False) and isinstance(base, Normal):
            if value.shape != base.batch_shape:
                value = value.expand(base.batch_shape)
            return _site_sum(0.5 * value.square(), HALF_LOG_2PI, ndims, scale, mask)
        if _is(base, Normal):
            loc, sd = base.loc, base.scale
            return _site_sum(0.5 * ((value - loc) / sd).square() + sd.log(), HALF_LOG_2PI, ndims, scale, mask)
    return -scale_and_mask(fn.log_prob(value, *args, **(kwargs or {})), scale, mask).sum(), 0.0
