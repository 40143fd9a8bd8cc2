"""Engines: how one optimisation step on a minibatch is taken (``train.engine``).

An engine owns the optimizer. ``step(x, y)`` returns the minibatch loss (−ELBO summed over the
batch) as a float; ``state_dict``/``load_state_dict`` carry the optimizer state through checkpoints;
``describe()`` says which path computes the loss and why (``{"path": "replay" | "one-pass" | "pyro", ...}``).

* ``svi``: ``pyro.infer.SVI`` + ``pyro.optim.ClippedAdam`` (Pyro's own loop: param store, per-parameter
  optimizers, argument validation on every step) with Pyro's own ELBO class.
* ``torch``: the loss from the speed layer (:func:`pyro_vae.fast.compile_loss`: Pyro's ELBO with fewer ops),
  ``loss.backward()``, an elementwise gradient clamp and one fused ``torch.optim.Adam`` over
  ``model.parameters()``. Same objective, same gradients and (up to Adam's ε
  placement, ~1e-7 relative) the same update as ``svi``.

Which engine a run uses (``auto``, data-parallel under ``torchrun``) is decided in
:mod:`pyro_vae.train.factory`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, runtime_checkable

import pyro
import pyro.optim
import torch
from pyro.infer import SVI
from torch import Tensor, nn

from ..errors import ConfigError
from ..fast import compile_loss
from ..fast.loss import pyro_class
from ..fast.notify import notify_stderr
from ..infer.objectives import build_elbo, check_estimator, set_objective_step
from .config import TrainConfig


class SVIEngine:
    """``pyro.infer.SVI`` with ClippedAdam: ``loss_and_grads`` on the objective, then an Adam update."""

    name = "svi"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        check_estimator("svi", config.objective)
        self.elbo = build_elbo(config.objective, model.max_plate_nesting)
        optim_args: Dict[str, Any] = {"lr": config.lr}
        if config.clip_norm is not None:
            optim_args["clip_norm"] = config.clip_norm
        self.optim = pyro.optim.ClippedAdam(optim_args)
        self.svi = SVI(model.model, model.guide, self.optim, loss=self.elbo)
        self.reason = "train.engine=svi"

    def fall_back(self, reason: str) -> None:
        """Record (and say once, on stderr) why this run takes Pyro's SVI loop instead of the torch engine."""
        self.reason = reason
        notify_stderr(f"pyro-vae: fast path off ({reason}); using Pyro's SVI with {pyro_class(self.elbo)}")

    def describe(self) -> Dict[str, str]:
        return {"path": "pyro", "reason": self.reason, "elbo": pyro_class(self.elbo)}

    def set_step(self, step: int) -> None:
        """The optimizer step count, for a scheduled latent weight (KL warm-up)."""
        set_objective_step(self.elbo, step)

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        return self.svi.step(x, y)

    def set_lr(self, lr: float) -> None:
        """The learning rate of every per-parameter optimizer, and of those created later (a scheduled lr)."""
        self.optim.pt_optim_args["lr"] = lr
        for optimizer in self.optim.optim_objs.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def state_dict(self) -> Dict[str, Any]:
        return self.optim.get_state()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optim.set_state(state)


@runtime_checkable
class DifferentiableLoss(Protocol):
    """An objective whose −ELBO is a differentiable tensor (every Pyro Trace*_ELBO)."""

    def differentiable_loss(self, model: Any, guide: Any, *args: Any, **kwargs: Any) -> Any: ...


def supports_torch_engine(elbo: Any) -> bool:
    """True when the objective is a :class:`DifferentiableLoss`."""
    return isinstance(elbo, DifferentiableLoss)


class TorchEngine:
    """``loss = −ELBO`` as a differentiable tensor, ``loss.backward()``, clamp, ``torch.optim.Adam.step()``."""

    name = "torch"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        if not supports_torch_engine(build_elbo(config.objective, model.max_plate_nesting)):
            raise ConfigError(f"train.engine: 'torch' needs an objective with differentiable_loss; "
                              f"{config.objective.type!r} has none (use engine: svi or auto)")
        self.model = model
        self.loss = compile_loss(model, config.objective, replay=config.replay)
        self.elbo = self.loss.elbo  # Pyro's ELBO (what the loss equals)
        self.clip = config.clip_norm
        self.params: List[Tensor] = [p for p in model.parameters() if p.requires_grad]
        # fused Adam: one update over all parameters (vs one Python-level optimizer per parameter in pyro.optim).
        self.optim = torch.optim.Adam(self.params, lr=config.lr, fused=True)
        self._checked = False

    def describe(self) -> Dict[str, str]:
        return self.loss.describe()

    def set_step(self, step: int) -> None:
        """The optimizer step count, for a scheduled latent weight (KL warm-up)."""
        self.loss.set_step(step)

    def loss_fn(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        """The differentiable minibatch loss (the DDP engine swaps in its wrapped module here)."""
        return self.loss.loss(x, y)

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        self.optim.zero_grad(set_to_none=True)
        loss = self.loss_fn(x, y)
        if not self._checked:  # any pyro.param living outside model.parameters() joins the optimizer
            known = {id(p) for p in self.params}
            extra = [p for p in self.loss.outside if id(p) not in known]
            if extra:
                self.params += extra
                self.optim.add_param_group({"params": extra})
            self._checked = True
        loss.backward()
        if self.clip is not None:  # ClippedAdam's clamp of every gradient entry to [−clip, clip]
            clip = self.clip
            for p in self.params:
                if p.grad is not None:
                    p.grad.clamp_(-clip, clip)
        self.optim.step()
        self.loss.set_step(self.loss.step + 1)
        return self.report(loss.detach())

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next steps (a scheduled lr; saved with the optimizer state)."""
        for group in self.optim.param_groups:
            group["lr"] = lr

    def report(self, loss: Tensor) -> float:
        """The float returned by ``step`` (on CUDA the one host sync of the step)."""
        return loss.item()

    def state_dict(self) -> Dict[str, Any]:
        return self.optim.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optim.load_state_dict(state)
