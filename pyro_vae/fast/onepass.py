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

The same two handlers, with ``per_point=True``, give per-datapoint log weights (:func:`point_scores`):

    log w_k = log p(x, z_k) − log q(z_k|x),  shape (K, B) inside the particle plate,

which carry the IWAE bound (:class:`OnePassIWAE`, = Pyro's ``RenyiELBO(alpha=0)``, with the standard or the
doubly-reparameterized gradient) and importance-sampled evaluation (:mod:`pyro_vae.evaluation.loglik`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import pyro
import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import get_dependent_plate_dims, torch_sum
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..errors import ConfigError
from ..infer.objectives import LatentScale, per_dim_kl
from . import compat
from .kernels import NO_CONSTANTS, LogQ, NotDetachable, Score, neg_log_prob_sum, rsample_scored


class NotFusable(Exception):
    """A site the one-pass ELBO does not cover (the caller falls back to Pyro's trace-based ELBO)."""


def _unsupported(msg: dict, why: str) -> NotFusable:
    return NotFusable(f"site {msg['name']!r}: {why}")


class GuideRun(Messenger):
    """Runs the guide: draws each latent site ``z ~ q`` by reparameterization and keeps ``(q, z, log q thunk)``;
    ``stop_params``: log q at stop-gradient parameters (DReG)."""

    def __init__(self, stop_params: bool = False) -> None:
        super().__init__()
        self.stop_params = stop_params
        self.sites: Dict[str, Tuple[Any, Tensor, LogQ, Any, Optional[Tensor]]] = {}
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
        try:
            value, log_q = rsample_scored(msg["fn"], self.stop_params)
        except NotDetachable as e:
            raise ConfigError(f"train.objective.estimator: 'dreg' needs log q(z|x) at stop-gradient parameters, "
                              f"which guide site {msg['name']!r} ({e}) does not give; use estimator: iwae") from None
        msg["value"], msg["done"] = value, True
        self.sites[msg["name"]] = (msg["fn"], value, log_q, msg["scale"], msg["mask"])


class ModelRun(Messenger):
    """Runs the model against the guide's draws, accumulating −Σ log p at observed sites and at latent sites
    (``mean_field``: KL(q‖p) in closed form where it exists, else −log p + log q), plus the free-bits term
    β·Σ_d relu(λ − KL̄_d) per latent site. ``per_point``: each site's −scale·mask·log p per datapoint, by
    name (``sites``), with its plates (``plates``); no KL, no free bits."""

    def __init__(self, guide_sites: Dict[str, tuple], subsamples: Dict[str, Tensor], mean_field: bool,
                 free_bits: float, constants: Any, per_point: bool = False) -> None:
        super().__init__()
        self.guide_sites, self.subsamples, self.mean_field = guide_sites, subsamples, mean_field
        self.free_bits, self.constants, self.per_point = free_bits, constants, per_point
        self.terms: List[Score] = []  # each −Σ scale·mask·log p (or a KL) as (tensor, constant)
        self.kl_sites: set = set()
        self.sites: Dict[str, Score] = {}  # per_point: site name -> −scale·mask·log p per datapoint
        self.plates: Dict[str, dict] = {}  # per_point: site name -> the plates it sits in (Pyro's site stub)
        self.observed: List[str] = []

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
        score = neg_log_prob_sum(fn, msg["value"], msg["scale"], msg["mask"], msg["args"], msg["kwargs"],
                                 self.constants, self.per_point)
        if not self.per_point:
            self.terms.append(score)
            return
        self.sites[name] = score
        self.plates[name] = {"type": "sample", "cond_indep_stack": msg["cond_indep_stack"]}
        if msg["is_observed"]:
            self.observed.append(name)


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


@dataclass
class PointScores:
    """Per-datapoint log densities of one pass, by site, each of the sites' batch shape (e.g. (K, B)):
    ``model`` log p (``observed`` names the observed sites), ``guide`` log q, and the guide's draws ``values``."""

    model: Dict[str, Tensor]
    guide: Dict[str, Tensor]
    observed: Tuple[str, ...]
    values: Dict[str, Tensor]

    @property
    def total(self) -> Tensor:
        """log w = Σ_model log p − Σ_guide log q, per datapoint."""
        return _sum(self.model.values()) - _sum(self.guide.values())

    @property
    def reconstruction(self) -> Tensor:
        """Σ log p at the observed sites (log p(x|z))."""
        return _sum(self.model[n] for n in self.observed)


def _sum(tensors) -> Tensor:
    tensors = iter(tensors)
    total = next(tensors, None)
    if total is None:
        return torch.zeros(())
    for t in tensors:
        total = total + t
    return total


def point_scores(model: Callable, guide: Callable, args: tuple, kwargs: dict, constants: Any = NO_CONSTANTS,
                 stop_params: bool = False) -> PointScores:
    """One pass over guide and model, each site scored per datapoint (its constant included). Plates that not
    every model site sits in are summed out, as Pyro's ``RenyiELBO`` does (``get_dependent_plate_dims``)."""
    guide_run = GuideRun(stop_params)
    with guide_run:
        guide(*args, **kwargs)
    model_run = ModelRun(guide_run.sites, guide_run.subsamples, False, 0.0, constants, per_point=True)
    with model_run:
        model(*args, **kwargs)
    sum_dims = get_dependent_plate_dims(model_run.plates.values())

    def points(score: Score, sign: float) -> Tensor:
        tensor, constant = score
        tensor = torch_sum(tensor if sign > 0 else -tensor, sum_dims)
        return tensor + sign * constant if constant else tensor

    log_p = {name: points(score, -1.0) for name, score in model_run.sites.items()}  # sites hold −log p
    log_q = {name: points(log_q(scale, mask, True), 1.0) for name, (_, _, log_q, scale, mask)
             in guide_run.sites.items()}
    values = {name: site[1] for name, site in guide_run.sites.items()}
    return PointScores(log_p, log_q, tuple(model_run.observed), values)


def in_particle_plate(fn: Callable, num_particles: int, max_plate_nesting: int) -> Callable:
    """``fn`` run inside ``pyro.plate("particles", K, dim=-(max_plate_nesting + 1))``: K draws per datapoint in
    one vectorized pass (the plate is entered inside ``fn``, so it broadcasts a site before a one-pass handler
    outside ``fn`` draws it)."""
    def wrapped(*args, **kwargs):
        with pyro.plate("particles", num_particles, dim=-(max_plate_nesting + 1)):
            return fn(*args, **kwargs)

    return wrapped


class OnePassIWAE:
    """−IWAE_K = −Σ_b [logsumexp_k log w_kb − log K] of Pyro ELBO ``elbo`` (a ``RenyiELBO`` with α = 0: its
    particles and plate nesting), from :func:`point_scores` (log w of shape (K, B) in the particle plate).

    ``dreg`` (Tucker et al. 2018): log q is evaluated at stop-gradient guide parameters, and the gradient that
    reaches each draw z_k is scaled by w̃_k = softmax_k log w once more (a tensor hook), so the guide gets
    Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ and the model Σ_k w̃_k ∇_θ log w_k; the value is the same bound. The hook is
    not part of a recorded graph, so a DReG loss runs eagerly.
    """

    weight = None  # no latent weight β(t)

    def __init__(self, elbo: Any, dreg: bool = False) -> None:
        self.elbo, self.dreg = elbo, dreg

    def __call__(self, model: Callable, guide: Callable, args: tuple, kwargs: dict, constants: Any = NO_CONSTANTS
                 ) -> Tensor:
        elbo, k = self.elbo, self.elbo.num_particles
        vectorized = elbo.vectorize_particles and k > 1  # as RenyiELBO: K = 1 is one pass without a particle plate
        if vectorized:  # one pass inside a particle plate, as Pyro's ELBOs do
            model, guide = compat.vectorized_particles(elbo, model), compat.vectorized_particles(elbo, guide)
            scores = point_scores(model, guide, args, kwargs, constants, self.dreg)
            log_w, draws = scores.total, [scores.values]
        else:
            passes = [point_scores(model, guide, args, kwargs, constants, self.dreg) for _ in range(k)]
            log_w = torch.stack(torch.broadcast_tensors(*(p.total for p in passes)))
            draws = [p.values for p in passes]
        if self.dreg and torch.is_grad_enabled():
            scale_gradients(draws, torch.softmax(log_w.detach(), 0), vectorized)
        bound = torch.logsumexp(log_w, 0)
        return -(bound.sum() - bound.numel() * math.log(k)) if k > 1 else -bound.sum()


def scale_gradients(draws: List[Dict[str, Tensor]], weights: Tensor, vectorized: bool) -> None:
    """Multiply the gradient reaching each draw z_k by w̃_k (``weights``, shape (K, ...batch)), via tensor hooks."""
    for k, values in enumerate(draws):
        w = weights if vectorized else weights[k]
        for name, z in values.items():
            if not z.requires_grad:
                continue
            if z.shape[:w.dim()] != w.shape:
                raise NotFusable(f"site {name!r}: DReG needs z's batch shape {tuple(z.shape)} to start with the "
                                 f"log-weight shape {tuple(w.shape)}")
            factor = w.reshape(w.shape + (1,) * (z.dim() - w.dim()))
            z.register_hook(lambda g, f=factor: g * f)
