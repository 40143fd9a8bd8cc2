"""Fused sample-and-score kernels for the one-pass ELBO (:mod:`pyro_vae.fast.onepass`).

Each kernel gives what ``Distribution.rsample``/``log_prob`` give (same random numbers, same value up to
float round-off), summed over the site with its plate scale and mask, in fewer tensor ops:

* Gaussian draw:  z = μ + σ⊙ε (the ε ``Normal.rsample`` draws),  Σ log q(z) = Σ −½ε² − log σ − ½ log 2π
* Gaussian score:  −Σ log N(v; μ, σ) = Σ ½((v − μ)/σ)² + log σ + ½ log 2π
* standard Gaussian score (μ, σ views of buffers found to hold zeros and ones, :class:`Constants`):
  −Σ log N(v; 0, 1) = Σ ½v² + ½ log 2π
* Bernoulli(logits ℓ) score:  −Σ log p(x) = BCEWithLogits(ℓ, x, reduction="sum")

Any other family goes through its own ``rsample``/``log_prob``. A score is returned as ``(tensor, constant)``
so that the constants of all sites (the ±½ log 2π terms) are added once, as one Python number. With
``per_point=True`` a score is not summed over the plates: the tensor has the site's batch shape (e.g. (K, B)
for K particles of B datapoints), the event dims summed, and the constant is per datapoint (what the IWAE
bound and importance-sampled evaluation need).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, FrozenSet, Optional, Tuple

import torch
import torch.nn.functional as F
from pyro.distributions.util import scale_and_mask
from torch import Tensor, nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal

from . import compat

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
Score = Tuple[Tensor, float]  # (a scalar tensor, a Python constant): the site's summed term is their sum


class Constants:
    """The module's floating buffers that hold only zeros or only ones, found by reading their values once.

    Reading values is a host sync, so it happens in :meth:`refresh` only when a buffer is new or was written
    in place since the last look (its version counter moved); in the hot path the kernels only compare a
    distribution's ``loc``/``scale`` with these buffers by identity (:meth:`current`). Inside a replay
    recording the module's buffers are fake tensors; they are looked up by name, so they match too.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.zeros: Tuple[str, ...] = ()
        self.ones: Tuple[str, ...] = ()
        self.seen: Dict[str, Tuple[int, int]] = {}  # zero/one buffer name -> (id, version) when last read
        self.scanned = False
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the buffers if one was replaced or written in place since the last look (a version counter
        moved); True when the sets of zero/one buffers changed."""
        get = self.module.get_buffer
        if self.scanned and all(id(get(n)) == i and compat.version(get(n)) == v for n, (i, v) in self.seen.items()):
            return False
        buffers = {n: b for n, b in self.module.named_buffers() if b.is_floating_point() and b.numel()}
        with torch.no_grad():
            zeros = tuple(n for n, b in buffers.items() if not bool(b.any()))
            ones = tuple(n for n, b in buffers.items() if bool((b == 1).all()))
        changed = (zeros, ones) != (self.zeros, self.ones)
        self.zeros, self.ones = zeros, ones
        self.seen = {n: (id(buffers[n]), compat.version(buffers[n])) for n in zeros + ones}
        self.scanned = True
        return changed

    def current(self) -> Tuple[FrozenSet[int], FrozenSet[int]]:
        """ids of the zero and the one buffers as the module holds them now (no value is read)."""
        get = self.module.get_buffer
        return frozenset(id(get(n)) for n in self.zeros), frozenset(id(get(n)) for n in self.ones)


def unwrap_independent(fn: Any) -> Tuple[Any, int]:
    """The base distribution under (nested) ``Independent`` wrappers and how many dims they reinterpret."""
    ndims = 0
    while compat.is_family(fn, Independent):
        ndims += fn.reinterpreted_batch_ndims
        fn = fn.base_dist
    return fn, ndims


def _plain(scale: Any, mask: Optional[Tensor]) -> bool:
    """No plate scale and no mask: the site's terms can be summed in one reduction."""
    return mask is None and isinstance(scale, (int, float)) and scale == 1.0


def _site_sum(elementwise: Tensor, constant: float, ndims: int, scale: Any, mask: Optional[Tensor],
              per_point: bool = False) -> Score:
    """Σ scale·mask·(Σ_event elementwise + event_size·constant), for an elementwise density term; ``per_point``:
    the same without the sum over the batch (plate) dims."""
    event_size = math.prod(elementwise.shape[elementwise.dim() - ndims:])
    if _plain(scale, mask):
        if per_point:
            return compat.sum_rightmost(elementwise, ndims), event_size * constant
        return elementwise.sum(), elementwise.numel() * constant
    points = scale_and_mask(compat.sum_rightmost(elementwise, ndims) + event_size * constant, scale, mask)
    return (points if per_point else points.sum()), 0.0


def _reduce(points: Tensor, per_point: bool) -> Tensor:
    return points if per_point else points.sum()


class NotDetachable(Exception):
    """A guide family whose log q cannot be evaluated at stop-gradient parameters (DReG needs it)."""


LogQ = Callable[..., Score]  # log_q(scale, mask, per_point=False)


def rsample_scored(fn: Any, stop_params: bool = False) -> Tuple[Tensor, LogQ]:
    """A reparameterized draw ``z ~ fn`` and ``log_q(scale, mask, per_point=False)`` = Σ scale·mask·log fn(z).

    ``stop_params``: log q(z; sg(params)), the density at stop-gradient parameters (same value; a gradient
    reaches the parameters only through z), as DReG needs. Normal and MultivariateNormal families (under
    ``Independent``) have it; any other raises :class:`NotDetachable`."""
    base, ndims = unwrap_independent(fn)
    if compat.is_family(base, Normal):
        loc, scale = base.loc, base.scale
        eps = compat.standard_normal(compat.extended_shape(base), loc)  # as Normal.rsample draws it
        z = loc + eps * scale
        if stop_params:  # −½((z − sg μ)/sg σ)² − log sg σ: the value of −½ε² − log σ, differentiable in z only
            sd = scale.detach()
            return z, lambda s, m, p=False: _site_sum(-0.5 * ((z - loc.detach()) / sd).square() - sd.log(),
                                                      -HALF_LOG_2PI, ndims, s, m, p)
        return z, lambda s, m, p=False: _site_sum(-0.5 * eps.square() - scale.log(), -HALF_LOG_2PI, ndims, s, m, p)
    z = fn.rsample()
    q = fn
    if stop_params:
        if not compat.is_family(base, MultivariateNormal):
            raise NotDetachable(type(base).__name__)
        q = MultivariateNormal(base.loc.detach(), scale_tril=base.scale_tril.detach())
        q = Independent(q, ndims) if ndims else q
    return z, lambda s, m, p=False: (_reduce(scale_and_mask(q.log_prob(z), s, m), p), 0.0)


NO_CONSTANTS: Tuple[FrozenSet[int], FrozenSet[int]] = (frozenset(), frozenset())


def _is_standard(base: Normal, constants: Tuple[FrozenSet[int], FrozenSet[int]]) -> bool:
    """μ and σ are views of a zero and a one buffer (so N(μ, σ) is N(0, 1) elementwise)."""
    zeros, ones = constants
    return bool(zeros) and id(compat.view_base(base.loc)) in zeros and id(compat.view_base(base.scale)) in ones


def neg_log_prob_sum(fn: Any, value: Tensor, scale: Any, mask: Optional[Tensor], args: tuple = (),
                     kwargs: Optional[dict] = None,
                     constants: Tuple[FrozenSet[int], FrozenSet[int]] = NO_CONSTANTS, per_point: bool = False) -> Score:
    """−Σ scale·mask·log fn(value) (minus what ``Trace.log_prob_sum`` adds for one site); ``per_point``: not
    summed over the batch dims (the site's ``−scale·mask·log_prob``)."""
    if not args and not kwargs:
        base, ndims = unwrap_independent(fn)
        if compat.is_family(base, Bernoulli) and "logits" in base.__dict__ and (per_point or _plain(scale, mask)):
            logits = base.logits
            if logits.shape != value.shape:
                logits, value = torch.broadcast_tensors(logits, value)
            if not per_point:
                return F.binary_cross_entropy_with_logits(logits, value, reduction="sum"), 0.0
            points = compat.sum_rightmost(F.binary_cross_entropy_with_logits(logits, value, reduction="none"), ndims)
            return (points if _plain(scale, mask) else scale_and_mask(points, scale, mask)), 0.0
        if compat.is_family(base, Normal):
            if _is_standard(base, constants):
                if value.shape != base.batch_shape:
                    value = value.expand(base.batch_shape)
                return _site_sum(0.5 * value.square(), HALF_LOG_2PI, ndims, scale, mask, per_point)
            loc, sd = base.loc, base.scale
            return _site_sum(0.5 * ((value - loc) / sd).square() + sd.log(), HALF_LOG_2PI, ndims, scale, mask,
                             per_point)
    return _reduce(-scale_and_mask(fn.log_prob(value, *args, **(kwargs or {})), scale, mask), per_point), 0.0
