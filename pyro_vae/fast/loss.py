"""The speed layer's entry point: :func:`compile_loss` turns a model, a guide and an objective into a loss.

Three paths compute the same −ELBO, or −IWAE bound for ``RenyiELBO(alpha=0)`` (same estimator, random numbers
and gradients):

* ``replay``: the one-pass loss's tensor ops, recorded once per batch shape and replayed (:mod:`.replay`);
* ``one-pass``: the one-pass loss run eagerly (:mod:`.onepass`), when replay is off or cannot record, and for
  the IWAE's DReG estimator (its gradient hook at z is not part of a recorded graph);
* ``pyro``: Pyro's own ELBO class, when the objective has no one-pass form, ``objective.fused`` is false, or
  the program has a site the one pass does not cover.

:meth:`FastLoss.describe` says which path runs and why; a fall-back the user did not ask for is also said
once, as one line on stderr (``notify``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Optional

import pyro
import pyro.infer
import torch
from pyro import poutine
from pyro.infer.util import is_validation_enabled
from pyro.poutine.messenger import Messenger
from torch import Tensor, nn

from ..errors import ConfigError, PyroVAEError
from ..infer.objectives import LatentWeightedMixin, build_elbo, objective_of, set_objective_step
from ..rng import set_torch_rng_state, torch_rng_state
from . import selfcheck
from .kernels import NO_CONSTANTS, Constants
from .notify import notify_stderr
from .onepass import NotFusable, OnePassELBO, OnePassIWAE
from .replay import ReplayedLoss

# Pyro ELBO classes the one pass reproduces, and whether their latent term is the closed-form KL
ONE_PASS_FORMS: Dict[type, bool] = {pyro.infer.Trace_ELBO: False, pyro.infer.TraceMeanField_ELBO: True}


def is_iwae(elbo: Any) -> bool:
    """Pyro's ``RenyiELBO`` with α = 0: the IWAE bound, which :class:`~.onepass.OnePassIWAE` reproduces."""
    return isinstance(elbo, pyro.infer.RenyiELBO) and elbo.alpha == 0


def pyro_class(elbo: Any) -> str:
    """The Pyro ELBO class ``elbo`` is (or adds a latent weighting to), e.g. ``Trace_ELBO``."""
    for cls in type(elbo).__mro__:
        if cls.__module__.startswith("pyro."):
            return cls.__name__
    return type(elbo).__name__


class RegisteredParams(Messenger):
    """Scoped to one loss call: ``pyro.param(name, p)`` for a module parameter registered on the first call
    returns ``p`` without a param-store lookup (``pyro.module`` re-registers every parameter on every call; the
    optimizer here holds the module's parameters directly)."""

    def __init__(self, names: FrozenSet[str]) -> None:
        super().__init__()
        self.names = names

    def _pyro_param(self, msg: dict) -> None:
        if len(msg["args"]) == 2 and msg["name"] in self.names:
            msg["value"], msg["done"] = msg["args"][1], True


class FastLoss(nn.Module):
    """``loss(x, y)`` = −ELBO(x) summed over the batch, a differentiable scalar, by the fastest path that
    reproduces Pyro's ELBO for this program (see the module docstring). ``forward`` is the eager program.

    The first call runs with Pyro's validation as configured (shape and support errors keep Pyro's messages)
    and finds the program's parameters; later calls run with validation off and without re-registering the
    module's parameters in Pyro's param store. ``outside`` lists trainable ``pyro.param`` tensors that are not
    parameters of the module (the caller optimizes them too; replay is then off, as it would freeze them).
    """

    def __init__(self, module: nn.Module, objective: Any, model: Optional[Callable] = None,
                 guide: Optional[Callable] = None, max_plate_nesting: Optional[int] = None, replay: bool = True,
                 notify: Optional[Callable[[str], None]] = notify_stderr) -> None:
        super().__init__()
        self.vae = module
        self.model_fn = module.model if model is None else model
        self.guide_fn = module.guide if guide is None else guide
        nesting = module.max_plate_nesting if max_plate_nesting is None else max_plate_nesting
        self.elbo = build_elbo(objective, nesting)  # Pyro's own: the fall-back and the validated first pass
        self.elbo_name = pyro_class(self.elbo)
        self.notify = notify or (lambda line: None)
        self.step, self.first, self.recording, self.checked = 0, True, False, False
        self.registered: FrozenSet[str] = frozenset()
        self.outside: List[Tensor] = []
        self.fused: Optional[bool] = None  # None: one pass not tried yet; False: Pyro's ELBO for good
        self.reason = ""
        self.one_pass: Optional[OnePassELBO] = None
        declared = objective_of(objective)
        form = ONE_PASS_FORMS.get(declared.pyro_elbo_class) if declared is not None else None
        self.dreg = declared is not None and declared.uses_dreg
        if declared is not None and not declared.runs_fused:
            self.fused, self.reason = False, "train.objective.fused=false"
        elif is_iwae(self.elbo):
            self.one_pass = OnePassIWAE(self.elbo, self.dreg)
        elif form is None:
            self._fall_back(f"objective {objective.type!r} ({self.elbo_name}) has no one-pass form")
        else:
            weight = None
            if isinstance(self.elbo, LatentWeightedMixin):
                device = next(iter(module.parameters()), torch.zeros(())).device
                self.register_buffer("latent_weight", torch.tensor(float(self.elbo.weight()), device=device),
                                     persistent=False)
                weight = lambda: self.latent_weight  # noqa: E731 (looked up per call: replay swaps it)
            free_bits = float(self.elbo.free_bits) if isinstance(self.elbo, LatentWeightedMixin) else 0.0
            self.one_pass = OnePassELBO(self.elbo, form, weight, free_bits)
        if self.one_pass is not None and self.fused is not False:
            untrusted = selfcheck.verdict(compile_loss)  # these torch/Pyro versions: private names present, results right
            if untrusted is not None:
                self._fall_back(f"self-check: {untrusted}")
        self.constants = Constants(module) if self.one_pass is not None else None
        self.replay: Optional[ReplayedLoss] = ReplayedLoss(self) if replay and self.one_pass is not None else None
        self.replay_reason = "" if replay else "train.replay=false"
        if self.dreg and self.replay is not None:  # its gradient hook at z is not part of a recorded graph
            self.replay, self.replay_reason = None, "train.objective.estimator=dreg (a gradient hook at z) runs eagerly"
        self.replay_noted = False
        self.weight_set: Optional[float] = None  # the latent weight β(t) last written into latent_weight

    # --- what runs ---------------------------------------------------------------------------------
    def describe(self) -> Dict[str, str]:
        """``{"path": "replay" | "one-pass" | "pyro", "reason": why, "elbo": the Pyro ELBO it equals}``."""
        if self.one_pass is None or self.fused is False:
            path, reason = "pyro", self.reason
        elif self.replay is None:
            path, reason = "one-pass", self.replay_reason
        elif self.replay.disabled is not None:
            path, reason = "one-pass", f"replay off: {self.replay.disabled}"
        elif self.outside:
            path, reason = "one-pass", "replay off: trainable pyro.param tensors outside the module"
        else:
            path = "replay"
            reason = f"{len(self.replay.graphs)} recorded graph(s)" if self.replay.graphs else "not recorded yet"
        return {"path": path, "reason": reason, "elbo": self.elbo_name}

    def eager_only(self, reason: str) -> None:
        """Run the one-pass program eagerly from now on (e.g. under DistributedDataParallel)."""
        self.replay, self.replay_reason = None, reason

    def _fall_back(self, reason: str) -> None:
        self.fused, self.reason = False, reason
        self.notify(f"pyro-vae: fast path off ({reason}); using Pyro's {self.elbo_name}")

    def set_step(self, step: int) -> None:
        """The optimizer step count, for a scheduled latent weight (KL warm-up β(t))."""
        self.step = step
        set_objective_step(self.elbo, step)
        if self.one_pass is not None and self.one_pass.weight is not None:
            weight = float(self.elbo.weight())
            if weight != self.weight_set:
                self.latent_weight.fill_(weight)
                self.weight_set = weight

    # --- the loss ----------------------------------------------------------------------------------
    def loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """This step's −ELBO: replayed when a graph for this batch shape exists, else recorded now or eager."""
        r = self.replay
        if r is not None and self.constants.refresh():  # a zero/one buffer was rewritten: re-record
            r.graphs.clear()
        if r is None or r.disabled is not None or self.fused is not True or self.outside:
            self._note_replay_off()
            return self(x, y)
        graph = r.graph_for(x, y)
        if graph is not None:
            return graph(r.tensors, x, y)
        self.recording = True
        try:
            return r(x, y)
        finally:
            self.recording = False
            self._note_replay_off()

    def _note_replay_off(self) -> None:
        """Say once that replay, asked for, is off for this program."""
        if self.replay is not None and not self.replay_noted and self.fused is True:
            described = self.describe()
            if described["path"] == "one-pass":
                self.replay_noted = True
                self.notify(f"pyro-vae: {described['reason']}; the one-pass {self.elbo_name} runs eagerly")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The eager program (what replay records)."""
        if self.first:
            return self._first_call(x, y)
        with pyro.validation_enabled(False), RegisteredParams(self.registered):
            return self._loss(x, y)

    def _first_call(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        with poutine.trace(param_only=True) as tr:
            loss = self._loss(x, y)
        own = {id(p) for p in self.vae.parameters()}
        values = {name: site["value"] for name, site in tr.trace.nodes.items()}
        self.registered = frozenset(n for n, v in values.items() if id(v) in own)
        outside = [v.unconstrained() for v in values.values() if id(v) not in own]
        self.outside = [p for p in outside if p is not None and p.requires_grad and id(p) not in own]
        self.first = False
        return loss

    def _loss(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        if self.one_pass is not None and self.fused is not False:
            if is_validation_enabled() and not self.checked:
                self._check(x, y)
            first = self.fused is None  # a first try that fails is undone, random draws included
            state = torch_rng_state() if first else None
            constants = self.constants.current() if self.constants is not None else NO_CONSTANTS
            try:
                loss = self.one_pass(self.model_fn, self.guide_fn, (x, y), {}, constants)
            except PyroVAEError:
                raise  # bad input: the same error on every path
            except Exception as e:
                if self.recording:
                    raise  # a program replay cannot record: replay falls back, the one pass stays
                if self.dreg:
                    why = str(e) if isinstance(e, NotFusable) else type(e).__name__
                    raise ConfigError(f"train.objective.estimator: 'dreg' runs on the speed layer's one pass only, "
                                      f"which this program does not fit ({why}); use estimator: iwae") from None
                self._fall_back(str(e) if isinstance(e, NotFusable) else f"{type(e).__name__}: {str(e).strip()}")
                if state is not None:
                    set_torch_rng_state(state)
            else:
                self.fused = True
                return loss
        return self.elbo.differentiable_loss(self.model_fn, self.guide_fn, x, y)

    def _check(self, x: Tensor, y: Optional[Tensor]) -> None:
        """Pyro's own validated, trace-based pass, once: model/guide mismatches and site shapes fail with Pyro's
        messages. It runs without gradients and on a forked random stream, so the draws that follow are the
        ones an unchecked run would make."""
        devices = [a.device for a in (x, y) if isinstance(a, Tensor) and a.device.type == "cuda"]
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            self.elbo.loss(self.model_fn, self.guide_fn, x, y)
        self.checked = True


def compile_loss(module: nn.Module, objective: Any, *, model: Optional[Callable] = None,
                 guide: Optional[Callable] = None, max_plate_nesting: Optional[int] = None, replay: bool = True,
                 notify: Optional[Callable[[str], None]] = notify_stderr) -> FastLoss:
    """The loss of ``module.model``/``module.guide`` (or ``model``/``guide``) under objective config
    ``objective`` (a registered ``train.objective``): call ``.loss(x, y)`` each step, ``.describe()`` for
    the path that runs. ``replay=False`` keeps the one-pass program eager; ``notify`` gets the one-line
    notice of a fall-back (default: stderr)."""
    return FastLoss(module, objective, model, guide, max_plate_nesting, replay, notify)
