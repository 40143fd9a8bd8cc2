"""Engines: how one optimisation step on a minibatch is taken (``train.engine``).

An engine owns the optimizer. ``step(x, y)`` returns the minibatch loss (−ELBO summed over the
batch) as a float; ``state_dict``/``load_state_dict`` carry the optimizer state through checkpoints.

* ``svi``: ``pyro.infer.SVI`` + ``pyro.optim.ClippedAdam`` (Pyro's own loop: param store, per-parameter
  optimizers, argument validation on every step).
* ``torch``: the ELBO as a module, ``loss = elbo.differentiable_loss(model, guide, x, y)``, then
  ``loss.backward()``, an elementwise gradient clamp and one fused ``torch.optim.Adam`` over
  ``model.parameters()``; Pyro/torch argument validation is checked on the first step and then
  switched off inside the step, and so is ``pyro.module``'s per-step re-registration of every
  parameter in the param store. Same objective, same gradients and (up to Adam's ε placement, ~1e-7
  relative) the same update as ``svi``.
* ``auto`` (default): ``torch`` when the objective has a ``differentiable_loss``, else ``svi``.

Under ``torchrun`` the ``torch`` engine is wrapped in DistributedDataParallel
(:mod:`pyro_vae.train.distributed`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Union

import pyro
import pyro.optim
import torch
from pyro import poutine
from pyro.infer import SVI
from torch import Tensor, nn

from ..errors import ConfigError
from ..infer.objectives import build_elbo, check_objective
from .config import TrainConfig
from .replay import ReplayedLoss


class SVIEngine:
    """``pyro.infer.SVI`` with ClippedAdam: ``loss_and_grads`` on the objective, then an Adam update."""

    name = "svi"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        self.elbo = build_elbo(config.objective, model.max_plate_nesting)
        optim_args: Dict[str, Any] = {"lr": config.lr}
        if config.clip_norm is not None:
            optim_args["clip_norm"] = config.clip_norm
        self.optim = pyro.optim.ClippedAdam(optim_args)
        self.svi = SVI(model.model, model.guide, self.optim, loss=self.elbo)

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        return self.svi.step(x, y)

    def state_dict(self) -> Dict[str, Any]:
        return self.optim.get_state()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optim.set_state(state)


class ELBOLoss(nn.Module):
    """The objective as a module: ``forward(x, y)`` = −ELBO(x) summed over the batch, differentiable.

    Pyro's ``Trace_ELBO()(model, guide)`` (``ELBOModule``) needs model and guide to be modules; ours are
    methods of one module, so this holds the module and calls ``elbo.differentiable_loss`` on them.
    """

    def __init__(self, model: nn.Module, elbo: pyro.infer.ELBO) -> None:
        super().__init__()
        self.vae, self.elbo = model, elbo

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.elbo.differentiable_loss(self.vae.model, self.vae.guide, x, y)


def supports_torch_engine(elbo: Any) -> bool:
    """True when the objective exposes ``differentiable_loss`` (every Pyro Trace*_ELBO does)."""
    return callable(getattr(elbo, "differentiable_loss", None))


class TorchEngine:
    """``loss = −ELBO`` as a differentiable tensor, ``loss.backward()``, clamp, ``torch.optim.Adam.step()``."""

    name = "torch"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        elbo = build_elbo(config.objective, model.max_plate_nesting)
        if not supports_torch_engine(elbo):
            raise ConfigError(f"train.engine: 'torch' needs an objective with differentiable_loss; "
                              f"{config.objective.type!r} has none (use engine: svi or auto)")
        self.model, self.elbo = model, elbo
        self.loss = ELBOLoss(model, elbo)
        self.clip = config.clip_norm
        self.params: List[Tensor] = [p for p in model.parameters() if p.requires_grad]
        # fused Adam: one kernel over all parameters (vs one Python-level optimizer per parameter in pyro.optim).
        self.optim = torch.optim.Adam(self.params, lr=config.lr, fused=True)
        self._checked = False
        self.replay = ReplayedLoss(self.loss) if getattr(config, "replay", False) else None

    def loss_fn(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """The differentiable minibatch loss (the DDP engine swaps in its wrapped module here): replayed
        once the one-pass objective has run eagerly (:mod:`pyro_vae.train.replay`), else eager."""
        if self._replayable():
            return self.replay(x, y)
        return self.loss(x, y)

    def _replayable(self) -> bool:
        """Replay is on, not given up, the objective ran its one-pass path and every trainable tensor is a
        module parameter (no ``pyro.param`` outside the module)."""
        r = self.replay
        return (r is not None and r.disabled is None and getattr(self.elbo, "fused", None) is True
                and len(self.params) == len(r.params))

    def _first_loss(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """First step: validation on (shape/support errors surface with Pyro's messages) and any
        ``pyro.param`` living outside ``model.parameters()`` joins the optimizer."""
        with poutine.trace(param_only=True) as tr:
            loss = self.loss_fn(x, y)
        known = {id(p) for p in self.params}
        extra = [site["value"].unconstrained() for site in tr.trace.nodes.values()]
        extra = [p for p in extra if p.requires_grad and id(p) not in known]
        if extra:
            self.params += extra
            self.optim.add_param_group({"params": extra})
        self._checked = True
        return loss

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        self.optim.zero_grad(set_to_none=True)
        graph = self.replay.graph_for(x, y) if self._replayable() else None
        if graph is not None:  # a recorded graph: no Pyro code runs, so no handlers to set up
            loss = graph(self.replay.tensors, x, y)
        elif self._checked:
            with pyro.validation_enabled(False), _modules_registered():
                loss = self.loss_fn(x, y)
        else:
            loss = self._first_loss(x, y)
        loss.backward()
        if self.clip is not None:  # ClippedAdam's clamp of every gradient entry to [−clip, clip]
            clip = self.clip
            for p in self.params:
                if p.grad is not None:
                    p.grad.clamp_(-clip, clip)
        self.optim.step()
        return self.report(loss.detach())

    def report(self, loss: Tensor) -> float:
        """The float returned by ``step`` (on CUDA the one host sync of the step)."""
        return loss.item()

    def state_dict(self) -> Dict[str, Any]:
        return self.optim.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optim.load_state_dict(state)


@contextmanager
def _modules_registered() -> Iterator[None]:
    """Within a step after the first: ``pyro.module(name, m)`` returns ``m`` without re-registering each of
    its parameters in the param store (two effectful ``pyro.param`` calls per parameter per step). The
    torch engine optimizes ``model.parameters()`` directly; the first step did the registration."""
    register = pyro.module
    pyro.module = _registered
    try:
        yield
    finally:
        pyro.module = register


def _registered(name: str, nn_module: nn.Module, update_module_params: bool = False) -> nn.Module:
    return nn_module


Engine = Union[SVIEngine, TorchEngine]
ENGINES = {"svi": SVIEngine, "torch": TorchEngine}


def resolve_engine(model: nn.Module, config: TrainConfig) -> str:
    """``auto`` is ``torch`` when the objective supports it, else ``svi``."""
    name = getattr(config, "engine", "auto")
    if name != "auto":
        return name
    return "torch" if supports_torch_engine(build_elbo(config.objective, model.max_plate_nesting)) else "svi"


def build_engine(model: nn.Module, config: TrainConfig) -> Engine:
    """The engine named by ``config.engine`` (DDP-wrapped under ``torchrun``)."""
    from . import distributed

    check_objective(model, config.objective)
    name = resolve_engine(model, config)
    if distributed.is_distributed():
        if name != "torch":
            raise ConfigError(f"train.engine: {name!r} cannot run data-parallel under torchrun "
                              "(use engine: torch or auto with a Trace*_ELBO objective)")
        return distributed.DistributedEngine(model, config)
    return ENGINES[name](model, config)
