"""One-pass ELBO: the estimator of Pyro's ``Trace_ELBO``/``TraceMeanField_ELBO`` (and their β / warm-up /
free-bits weighting, :mod:`pyro_vae.infer.objectives`), scored while the guide and model run instead of from
two recorded traces.

    −ELBO ≈ Σ_sites scale·mask·[log q(z|x) − log p(x, z)] (+ free-bits shortfall),   z = μ + σ⊙ε, ε ~ N(0, I)

``Trace_ELBO`` records a guide trace, replays the model against it, then walks both traces to call each
site's ``log_prob``. Here one :class:`~pyro.poutine.messenger.Messenger` per program does the work at the
sample statement: the guide handler draws each latent site with a fused sample-and-score kernel
(:mod:`pyro_vae.fast.kernels`) and the model handler replays the value and scores it. Same random
numbers, same value up to float round-off, same gradients (the Gaussian kernel uses the path-derivative
identity ∇ log q(μ+σε; μ, σ) = ∇(−log σ), exact for the reparameterized estimator).

Covered: fully reparameterized guides (every latent site has ``rsample``), every model latent present in
the guide, observed sites and ``pyro.factor``, plates with subsampling scale, masks, ``poutine.scale``,
vectorized particles, a latent weight β(t) and free bits. Anything else (enumeration, score-function sites,
model-only latents, auxiliary guide sites) raises :class:`NotFusable`; the caller then uses Pyro's own ELBO.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..infer.objectives import LatentScale, per_dim_kl
from . import compat
from .kernels import NO_CONSTANTS, Score, neg_log_prob_sum, rsample_scored


class NotFusable(Exception):
    """A site the one-pass ELBO does not cover (the caller falls back to Pyro's trace-based ELBO)."""


def _unsupported(msg: dict, why: str) -> NotFusable:
    return NotFusable(f"site {msg['name']!r}: {why}")


class GuideRun(Messenger):
    """Runs the guide: draws each latent site ``z ~ q`` by reparameterization and keeps ``(q, z, log q thunk)``."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Dict[str, Tuple[Any, Tensor, Callable[..., Score], Any, Optional[Tensor]]] = {}
        self.subsamples: Dict[str, Tensor] = {}  # plate subsample indices, replayed in the model

    def _pyro_post_sample(self, msg: dict) -> None:
        if site_is_subsample(msg):
            self.subsamples[msg["name"]] = msg["value"]

    def _pyro_sample(self, msg: dict) -> None:
        if site_is_subsample(msg):
            return
        if msg["is_observed"]:
            raise _unsupported(msg, "observed site in the guide")
        if msg["infer"].get("enumerate") or not msg["fn"].has_rsample:
            raise _unsupported(msg, "not reparameterizable (needs a score-function or enumeration estimator)")
        value, log_q = rsample_scored(msg["fn"])
        msg["value"], msg["done"] = value, True
        self.sites[msg["name"]] = (msg["fn"], value, log_q, msg["scale"], msg["mask"])


class ModelRun(Messenger):
    """Runs the model against the guide's draws, accumulating −Σ log p at observed sites and at latent sites
    (``mean_field``: KL(q‖p) in closed form where it exists, else −log p + log q), plus the free-bits term
    β·Σ_d relu(λ − KL̄_d) per latent site."""

    def __init__(self, guide_sites: Dict[str, tuple], subsamples: Dict[str, Tensor], mean_field: bool,
                 free_bits: float, constants: Any) -> None:
        super().__init__()
        self.guide_sites, self.subsamples, self.mean_field = guide_sites, subsamples, mean_field
        self.free_bits, self.constants = free_bits, constants
        self.terms: List[Score] = []  # each −Σ scale·mask·log p (or a KL) as (tensor, constant)
        self.kl_sites: set = set()

    def _pyro_sample(self, msg: dict) -> None:
        if site_is_subsample(msg):  # the guide's minibatch indices, as poutine.replay does
            if msg["name"] in self.subsamples:
                msg["value"], msg["done"] = self.subsamples[msg["name"]], True
            return
        name, fn = msg["name"], msg["fn"]
        if msg["infer"].get("enumerate"):
            raise _unsupported(msg, "enumerated")
        if not msg["is_observed"]:
            if name not in self.guide_sites:
                raise _unsupported(msg, "latent site missing from the guide")
            q, value, _, q_scale, q_mask = self.guide_sites[name]
            msg["value"], msg["done"] = value, True
            if self.free_bits > 0:  # as LatentWeightedMixin: the guide site's scale carries β
                kl = per_dim_kl({"fn": fn}, {"fn": q, "value": value}, self.mean_field)
                shortfall = torch.relu(self.free_bits - kl.reshape(-1, kl.shape[-1]).mean(0))
                self.terms.append((scale_and_mask(shortfall.sum().expand(kl.shape[:-1]), q_scale, q_mask).sum(), 0.0))
            if self.mean_field:
                try:
                    kl = kl_divergence(q, fn)
                except NotImplementedError:
                    pass
                else:
                    self.kl_sites.add(name)
                    self.terms.append((scale_and_mask(kl, q_scale, q_mask).sum(), 0.0))
                    return
        self.terms.append(neg_log_prob_sum(fn, msg["value"], msg["scale"], msg["mask"], msg["args"], msg["kwargs"],
                                           self.constants))


def one_pass_loss(model: Callable, guide: Callable, args: tuple, kwargs: dict, mean_field: bool = False,
                  free_bits: float = 0.0, constants: Any = NO_CONSTANTS) -> Tensor:
    """One particle of −ELBO (a differentiable scalar), scored in one pass over guide and model."""
    guide_run = GuideRun()
    with guide_run:
        guide(*args, **kwargs)
    model_run = ModelRun(guide_run.sites, guide_run.subsamples, mean_field, free_bits, constants)
    with model_run:
        model(*args, **kwargs)
    terms = model_run.terms + [log_q(scale, mask) for name, (_, _, log_q, scale, mask) in guide_run.sites.items()
                               if name not in model_run.kl_sites]
    if not terms:
        return torch.zeros(())
    loss = terms[0][0]
    for tensor, _ in terms[1:]:
        loss = loss + tensor
    constant = sum(c for _, c in terms)  # e.g. the ±½ log 2π of prior and guide cancel
    return loss + constant if constant != 0.0 else loss


class OnePassELBO:
    """−ELBO of Pyro ELBO ``elbo`` (its particles, its plate nesting), computed by :func:`one_pass_loss`.

    ``weight`` (returning a 0-dim tensor; None for β = 1) scales every latent site as Pyro's ``LatentScale``
    does; being a tensor looked up at each call (a buffer), a recorded graph takes it as an input and reads its
    current value. ``__call__`` raises :class:`NotFusable` for a program the one pass does not cover.
    """

    def __init__(self, elbo: Any, mean_field: bool, weight: Optional[Callable[[], Tensor]] = None,
                 free_bits: float = 0.0) -> None:
        self.elbo, self.mean_field, self.weight, self.free_bits = elbo, mean_field, weight, free_bits

    def __call__(self, model: Callable, guide: Callable, args: tuple, kwargs: dict, constants: Any = NO_CONSTANTS
                 ) -> Tensor:
        if self.weight is not None:
            weight = self.weight()  # the buffer as the module holds it now (a fake tensor while recording)
            handler = LatentScale(lambda: weight)
            model, guide = handler(model), handler(guide)
        elbo = self.elbo
        repeats = 1 if elbo.vectorize_particles else elbo.num_particles
        if elbo.vectorize_particles:  # one pass inside a particle plate, as Pyro's ELBOs do
            model, guide = compat.vectorized_particles(elbo, model), compat.vectorized_particles(elbo, guide)
        loss = one_pass_loss(model, guide, args, kwargs, self.mean_field, self.free_bits, constants)
        for _ in range(repeats - 1):
            loss = loss + one_pass_loss(model, guide, args, kwargs, self.mean_field, self.free_bits, constants)
        # no warn_if_nan: it reads the value (a host sync); the trainer stops on a non-finite loss itself
        return loss / elbo.num_particles if elbo.num_particles > 1 else loss
