"""Variational objectives, registered by name (``train.objective.type``); each builds a Pyro ELBO.

``elbo`` and ``meanfield`` also take a weight on the latent term (β-VAE), a linear KL warm-up of that
weight and free bits; these are a handler and a loss correction on top of Pyro's own ELBO classes:

    L_β,λ = E_q[log p(x|z)] − β(t) · Σ_d max(λ, KL̄_d),    β(t) = β · min(1, (t + 1) / T_warmup)

where KL̄_d is the minibatch mean of dimension d's KL(q(z_d|x)‖p(z_d)) (closed form for ``meanfield``,
one-sample estimate for ``elbo``). With β = 1, no warm-up and λ = 0 the plain Pyro ELBO is built.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, Tuple

import pyro.infer
import torch
from pyro.distributions import Independent
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import is_identically_zero, scale_and_mask
from pyro.infer.util import get_dependent_plate_dims, torch_item, torch_sum
from pyro.poutine.messenger import Messenger
from pyro.poutine.trace_struct import Trace

from ..config.schema import opt, positive
from ..config.validators import non_negative
from ..errors import ConfigError
from ..fast.compat import TraceHooks, particle_traces
from ..registry import OBJECTIVES


@dataclass
class ParticlesConfig:
    """Options shared by Monte-Carlo objectives."""

    num_particles: int = opt(1, "samples m of z per x", positive, "an integer >= 1")
    vectorize_particles: bool = opt(True, "draw the m particles in one vectorized pass")


@dataclass
class LatentWeightConfig(ParticlesConfig):
    """Options weighting the latent (KL) term: β-VAE, KL warm-up, free bits."""

    beta: float = opt(1.0, "weight β on the latent term: E_q log p(x|z) − β·KL (β-VAE)", non_negative,
                      "a number >= 0")
    warmup_steps: int = opt(0, "KL warm-up: the weight rises linearly from β/T to β over T SVI steps (0: off)",
                            non_negative, "an integer >= 0")
    free_bits: float = opt(0.0, "free bits λ: each latent dim's minibatch-mean KL counts as max(λ, KL_d) "
                                "nats (a non-factorized prior: the whole z) (0: off)", non_negative, "a number >= 0")
    fused: bool = opt(True, "torch engine: compute this ELBO with the speed layer (pyro_vae.fast: same estimator "
                            "and gradients, fewer ops; a program it cannot run falls back to Pyro's class and "
                            "says so); false: Pyro's trace-based ELBO class as is")


@dataclass
class ELBOConfig(LatentWeightConfig):
    type: str = "elbo"


@dataclass
class MeanFieldConfig(LatentWeightConfig):
    type: str = "meanfield"


@dataclass
class IWAEConfig:
    type: str = "iwae"
    num_particles: int = opt(5, "importance samples K per x: log (1/K) Σ_k p(x,z_k)/q(z_k|x)", positive,
                             "an integer >= 1")
    vectorize_particles: bool = opt(True, "draw the K particles in one vectorized pass")
    estimator: Literal["iwae", "dreg"] = opt(
        "iwae", "gradient estimator: iwae (reparameterized, Σ_k w̃_k ∇ log w_k) or dreg (doubly reparameterized, "
                "Tucker et al. 2018: the guide gets Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ; torch engine, Gaussian guides)")


@dataclass
class EnumConfig(ParticlesConfig):
    type: str = "enum"


class LatentScale(Messenger):
    """Multiplies the log-density scale of every latent (unobserved) sample site by ``weight()``.

    Applied to model and guide alike it turns E_q[log p(z) − log q(z|x)] into β · (−KL), and in
    TraceMeanField_ELBO the closed-form KL is scaled by the guide site's scale, i.e. by β as well.
    (``poutine.scale`` would refuse β = 0 and cannot follow a schedule.)
    """

    def __init__(self, weight: Callable[[], float]) -> None:
        super().__init__()
        self.weight = weight

    def _process_message(self, msg: dict) -> None:
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = self.weight() * msg["scale"]


def per_dim_kl(model_site: dict, guide_site: dict, closed_form: bool) -> torch.Tensor:
    """KL(q(z_d|x)‖p(z_d)) per latent dim, shape ``(..., D)``: closed form when available, else log q − log p
    at the sampled z. A prior that does not factorize over dims (a mixture) gives one group, shape ``(..., 1)``."""
    q, p, z = guide_site["fn"], model_site["fn"], guide_site["value"]
    if not (isinstance(q, Independent) and isinstance(p, Independent)):
        return (q.log_prob(z) - p.log_prob(z)).unsqueeze(-1)
    if closed_form:
        try:
            return kl_divergence(q.base_dist, p.base_dist).expand(z.shape)
        except NotImplementedError:
            pass
    return q.base_dist.log_prob(z) - p.base_dist.log_prob(z)


class LatentWeightedMixin(TraceHooks):
    """β(t)-weighted latent term and free bits on top of a Pyro ``Trace*_ELBO`` (see the module docstring).

    ``step`` counts gradient evaluations (one per SVI step) and drives the warm-up; a trainer resuming
    from a checkpoint sets it to its own step count.
    """

    beta: float = 1.0
    warmup_steps: int = 0
    free_bits: float = 0.0
    closed_form_kl: bool = False

    def configure(self, beta: float, warmup_steps: int, free_bits: float) -> "LatentWeightedMixin":
        self.beta, self.warmup_steps, self.free_bits, self.step = beta, warmup_steps, free_bits, 0
        return self

    def weight(self) -> float:
        """β(t) = β · min(1, (t + 1) / T_warmup); β when warm-up is off."""
        if self.warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, (self.step + 1) / self.warmup_steps)

    def program_handler(self) -> Messenger:
        """Model and guide run with each latent site's log-density scaled by β(t)."""
        return LatentScale(self.weight)

    def particle_loss(self, model_trace: Trace, guide_trace: Trace, loss: Any, surrogate: Any) -> Tuple[Any, Any]:
        """Pyro's particle (loss, surrogate) plus the free-bits shortfall β·Σ_d relu(λ − KL̄_d)."""
        if self.free_bits <= 0:
            return loss, surrogate
        # −L gains β·Σ_d max(λ, KL̄_d) − β·Σ_d KL̄_d = β·Σ_d relu(λ − KL̄_d) per datapoint (the site scale holds β)
        penalty = 0.0
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"] or name not in guide_trace.nodes:
                continue
            guide_site = guide_trace.nodes[name]
            kl = per_dim_kl(site, guide_site, self.closed_form_kl)
            shortfall = torch.relu(self.free_bits - kl.reshape(-1, kl.shape[-1]).mean(0))
            per_point = shortfall.sum().expand(kl.shape[:-1])
            penalty = penalty + scale_and_mask(per_point, guide_site["scale"], guide_site["mask"]).sum()
        return loss + torch_item(penalty), surrogate + penalty

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = super().loss_and_grads(model, guide, *args, **kwargs)
        self.step += 1
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        if torch.is_grad_enabled():
            self.step += 1
        return loss


@functools.lru_cache(maxsize=None)
def latent_weighted(elbo_cls: type) -> type:
    """``elbo_cls`` with :class:`LatentWeightedMixin` (e.g. ``LatentWeightedTrace_ELBO``)."""
    closed_form = issubclass(elbo_cls, pyro.infer.TraceMeanField_ELBO)
    return type(f"LatentWeighted{elbo_cls.__name__}", (LatentWeightedMixin, elbo_cls), {"closed_form_kl": closed_form})


class Objective:
    """Wraps a Pyro ELBO class: ``build(max_plate_nesting)`` returns the configured instance.

    What the engines and the speed layer need to know is declared here: :attr:`pyro_elbo_class`,
    :attr:`uses_dreg` and :attr:`runs_fused` (an objective class registered without this base has no one-pass form).
    """

    #: the Pyro ELBO class this objective is (the speed layer reproduces some: pyro_vae.fast.loss.ONE_PASS_FORMS)
    pyro_elbo_class: type = pyro.infer.Trace_ELBO

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def uses_dreg(self) -> bool:
        """The gradient is the doubly reparameterized (DReG) estimator (the speed layer's one pass only)."""
        return False

    @property
    def runs_fused(self) -> bool:
        """The torch engine may compute it with the speed layer (else Pyro's class as is)."""
        return True

    def kwargs(self) -> dict:
        return {"num_particles": self.config.num_particles, "vectorize_particles": self.config.vectorize_particles}

    def build(self, max_plate_nesting: int) -> pyro.infer.ELBO:
        return self.pyro_elbo_class(max_plate_nesting=max_plate_nesting, **self.kwargs())


class LatentWeightedObjective(Objective):
    """An ELBO with the options of :class:`LatentWeightConfig`: a β(t)-weighted latent term, free bits, ``fused``."""

    @property
    def runs_fused(self) -> bool:
        return self.config.fused

    def build(self, max_plate_nesting: int) -> pyro.infer.ELBO:
        c = self.config
        if c.beta == 1.0 and c.warmup_steps <= 0 and c.free_bits <= 0:
            return super().build(max_plate_nesting)
        elbo = latent_weighted(self.pyro_elbo_class)(max_plate_nesting=max_plate_nesting, **self.kwargs())
        return elbo.configure(c.beta, c.warmup_steps, c.free_bits)


@OBJECTIVES.register("elbo", ELBOConfig)
class ELBO(LatentWeightedObjective):
    """Trace_ELBO: E_q[log p(x,z) − log q(z|x)], estimated with m reparameterized samples."""

    pyro_elbo_class = pyro.infer.Trace_ELBO


@OBJECTIVES.register("meanfield", MeanFieldConfig)
class MeanFieldELBO(LatentWeightedObjective):
    """TraceMeanField_ELBO: E_q[log p(x|z)] − KL(q(z|x)‖p(z)), the KL in closed form where it exists."""

    pyro_elbo_class = pyro.infer.TraceMeanField_ELBO


@OBJECTIVES.register("enum", EnumConfig)
class EnumELBO(Objective):
    """TraceEnum_ELBO: discrete sites marked ``enumerate="parallel"`` are summed out exactly."""

    pyro_elbo_class = pyro.infer.TraceEnum_ELBO


class RenyiLoss(pyro.infer.RenyiELBO):
    """Pyro's ``RenyiELBO`` with a ``differentiable_loss`` (trace-based; the torch engine's fall-back when the
    one pass does not fit): −Σ_b [logsumexp_k (1−α) log w_kb − log K] / (1−α), whose gradient is Pyro's
    surrogate's (a non-reparameterized guide site's log q enters the value, not the gradient, as in Pyro)."""

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        particles = []
        for model_trace, guide_trace in particle_traces(self, model, guide, args, kwargs):
            sum_dims = get_dependent_plate_dims(model_trace.nodes.values())
            particle = 0.0
            for site in model_trace.nodes.values():
                if site["type"] == "sample":
                    particle = particle + torch_sum(site["log_prob"], sum_dims)
            for site in guide_trace.nodes.values():
                if site["type"] == "sample":
                    log_q = torch_sum(site["log_prob"], sum_dims)
                    reparameterized = not is_identically_zero(site["score_parts"].entropy_term)
                    particle = particle - (log_q if reparameterized else log_q.detach())
            particles.append(particle)
        if all(isinstance(p, (int, float)) for p in particles):
            return torch.zeros(())
        if self.vectorize_particles and self.num_particles > 1:
            log_w = (1.0 - self.alpha) * particles[0]
        else:
            log_w = (1.0 - self.alpha) * torch.stack(torch.broadcast_tensors(*map(torch.as_tensor, particles)))
        bound = torch.logsumexp(log_w, 0) - math.log(self.num_particles)
        return -bound.sum() / (1.0 - self.alpha)


@OBJECTIVES.register("iwae", IWAEConfig)
class IWAE(Objective):
    """Importance-weighted bound E[log (1/K) Σ_k p(x,z_k)/q(z_k|x)] (Burda et al.): RenyiELBO with α = 0."""

    pyro_elbo_class = RenyiLoss

    @property
    def uses_dreg(self) -> bool:
        return self.config.estimator == "dreg"

    def kwargs(self) -> dict:
        return {"alpha": 0.0, **super().kwargs()}


def objective_of(config: Any) -> Optional[Objective]:
    """The :class:`Objective` registered for objective ``config``; None for an objective class without that base."""
    objective = OBJECTIVES.build(config)
    return objective if isinstance(objective, Objective) else None


def uses_dreg(config: Any) -> bool:
    """Objective ``config`` asks for the DReG gradient estimator."""
    objective = objective_of(config)
    return objective is not None and objective.uses_dreg


def set_objective_step(elbo: Any, step: int) -> None:
    """Tell a scheduled objective (KL warm-up) the trainer's step count, e.g. after resuming; others ignore it."""
    if isinstance(elbo, LatentWeightedMixin):
        elbo.step = step


def check_objective(model: Any, config: Any) -> None:
    """ConfigError when ``model`` marks discrete sites for enumeration and objective ``config`` would not sum
    them out (see :func:`check_enumerated`)."""
    check_enumerated(model.enumerated_sites, config)


def check_enumerated(sites: Tuple[str, ...], config: Any) -> None:
    """ConfigError when there are enumerated ``sites`` and objective ``config`` would not sum them out: any other
    ELBO samples them from the model (a biased objective, not a bound on log p(x))."""
    if sites and config.type != "enum":
        names = ", ".join(repr(s) for s in sites)
        raise ConfigError(f"train.objective.type: {config.type!r} cannot train a model with the enumerated site(s) "
                          f"{names} (model.prior.form: enumerate, model.type: gmvae or m2): it would sample them, not sum them "
                          "out; use train.objective.type=enum (TraceEnum_ELBO)")


def check_estimator(engine: str, config: Any, guide: Optional[type] = None) -> None:
    """ConfigError when objective ``config`` asks for the DReG estimator and ``engine`` is Pyro's SVI loop, whose
    ``RenyiELBO`` gives the standard IWAE gradient only, or the ``guide`` family (a Guide class; None: the model's
    own) has no density at stop-gradient parameters."""
    if not uses_dreg(config):
        return
    if engine == "svi":
        raise ConfigError("train.objective.estimator: 'dreg' needs train.engine: torch or auto (Pyro's SVI loop "
                          "has the standard IWAE gradient only)")
    if guide is not None and not guide.detachable_density:
        raise ConfigError(f"train.objective.estimator: 'dreg' needs log q(z|x) at stop-gradient parameters, which "
                          f"the guide family of model.guide.type ({guide.__name__}) does not give; use estimator: iwae "
                          "or model.guide.type gaussian or full_covariance")


def build_elbo(config, max_plate_nesting: int) -> pyro.infer.ELBO:
    """The Pyro ELBO for objective config ``config``."""
    return OBJECTIVES.build(config).build(max_plate_nesting)
