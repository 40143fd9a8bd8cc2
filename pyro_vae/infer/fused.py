"""One-pass Trace_ELBO: the same estimator as Pyro's ``Trace_ELBO``/``TraceMeanField_ELBO``, scored while the
guide and model run instead of from two recorded traces.

    ELBO ≈ Σ_sites scale·mask·[log p(x, z) − log q(z|x)],   z = μ + σ⊙ε drawn once per site (ε ~ N(0, I))

``Trace_ELBO`` records a guide trace, replays the model against it, then walks both traces to call each
site's ``log_prob``. Here one :class:`~pyro.poutine.messenger.Messenger` per program does the work at the
sample statement: the guide handler draws each latent site with a fused sample-and-score kernel
(:mod:`pyro_vae.infer.kernels`) and the model handler replays the value and scores it. Same random
numbers, same value up to float round-off, same gradients (the Gaussian kernel uses the path-derivative
identity ∇ log q(μ+σε; μ, σ) = ∇(−log σ), exact for the reparameterized estimator).

Covered: fully reparameterized guides (every latent site has ``rsample``), every model latent present in
the guide, observed sites and ``pyro.factor``, plates with subsampling scale, masks, ``poutine.scale``,
vectorized particles. Anything else (enumeration, score-function sites, model-only latents, auxiliary
guide sites) raises :class:`NotFusable` inside the run and that call, and every later one, goes through
Pyro's own trace-based code. With Pyro validation on, the first call also runs Pyro's validated pass (on a
forked random stream), so model/guide mismatches and shape errors keep Pyro's messages.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import pyro.infer
import torch
from pyro.distributions.kl import kl_divergence
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..rng import set_torch_rng_state, torch_rng_state
from .kernels import Score, neg_log_prob_sum, rsample_scored


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
    (``mean_field``: KL(q‖p) in closed form where it exists, else −log p + log q)."""

    def __init__(self, guide_sites: Dict[str, tuple], mean_field: bool, subsamples: Dict[str, Tensor]) -> None:
        super().__init__()
        self.guide_sites, self.mean_field, self.subsamples = guide_sites, mean_field, subsamples
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
            if self.mean_field:
                try:
                    kl = kl_divergence(q, fn)
                except NotImplementedError:
                    pass
                else:
                    self.kl_sites.add(name)
                    self.terms.append((scale_and_mask(kl, q_scale, q_mask).sum(), 0.0))
                    return
        self.terms.append(neg_log_prob_sum(fn, msg["value"], msg["scale"], msg["mask"], msg["args"], msg["kwargs"]))


def fused_loss(model: Callable, guide: Callable, args: tuple, kwargs: dict, mean_field: bool = False) -> Tensor:
    """One particle of −ELBO (a differentiable scalar), scored in one pass over guide and model."""
    guide_run = GuideRun()
    with guide_run:
        guide(*args, **kwargs)
    model_run = ModelRun(guide_run.sites, mean_field, guide_run.subsamples)
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


class FusedELBOMixin:
    """``differentiable_loss``/``loss``/``loss_and_grads`` through :func:`fused_loss`, falling back to the
    parent Pyro ELBO class for a program that is :class:`NotFusable`. With validation on, the first call also
    runs the parent's validated pass (:meth:`_check`)."""

    mean_field: bool = False
    fused: Optional[bool] = None  # None: not tried yet; False: fell back for good (``reason`` says why)
    reason: str = ""
    checked: bool = False  # Pyro's validated pass has run once

    def _check(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> None:
        """Pyro's own validated, trace-based pass, once: model/guide mismatches and site shapes fail with Pyro's
        messages. It runs without gradients and on a forked random stream, so the draws that follow are the
        ones an unchecked run would make."""
        devices = [a.device for a in args if isinstance(a, Tensor) and a.device.type == "cuda"]
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            super().loss(model, guide, *args, **kwargs)  # the parent Pyro ELBO's loss
        self.checked = True

    def _fused_loss(self, model: Callable, guide: Callable, args: tuple, kwargs: dict) -> Optional[Tensor]:
        """−ELBO averaged over particles, or None when this call must go through Pyro's traces."""
        if self.fused is False:
            return None
        if is_validation_enabled() and not self.checked:
            self._check(model, guide, args, kwargs)
        first = self.fused is None  # a first try that fails is undone, random draws included
        state = torch_rng_state() if first else None
        repeats = 1 if self.vectorize_particles else self.num_particles
        if self.vectorize_particles:  # one pass inside a particle plate, as Pyro's ELBOs do
            model, guide = self._vectorized_num_particles(model), self._vectorized_num_particles(guide)
        try:
            loss = fused_loss(model, guide, args, kwargs, self.mean_field)
            for _ in range(repeats - 1):
                loss = loss + fused_loss(model, guide, args, kwargs, self.mean_field)
        except NotFusable as e:
            self.fused, self.reason = False, str(e)
            if state is not None:
                set_torch_rng_state(state)
            return None
        self.fused = True
        # no warn_if_nan: it reads the value (a host sync); the trainer stops on a non-finite loss itself
        return loss / self.num_particles if self.num_particles > 1 else loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> Tensor:
        loss = self._fused_loss(model, guide, args, kwargs)
        return super().differentiable_loss(model, guide, *args, **kwargs) if loss is None else loss

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            loss = self._fused_loss(model, guide, args, kwargs)
        return super().loss(model, guide, *args, **kwargs) if loss is None else loss.item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        loss = self._fused_loss(model, guide, args, kwargs)
        if loss is None:
            return super().loss_and_grads(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        return loss.item()


class FusedTrace_ELBO(FusedELBOMixin, pyro.infer.Trace_ELBO):
    """``Trace_ELBO`` scored in one pass: E_q[log p(x, z) − log q(z|x)] with m reparameterized samples."""


class FusedTraceMeanField_ELBO(FusedELBOMixin, pyro.infer.TraceMeanField_ELBO):
    """``TraceMeanField_ELBO`` scored in one pass: E_q[log p(x|z)] − KL(q(z|x)‖p(z)), KL in closed form."""

    mean_field = True
