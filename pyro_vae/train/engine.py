"""Engines: how one optimisation step on a minibatch is taken (``train.engine``).

An engine owns the optimizer. ``step(x, y)`` returns the minibatch loss (−ELBO summed over the
batch); ``state_dict``/``load_state_dict`` carry the optimizer state through checkpoints.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import pyro
import pyro.optim
from pyro.infer import SVI
from torch import Tensor, nn

from ..infer.objectives import build_elbo
from .config import TrainConfig


class SVIEngine:
    """``pyro.infer.SVI`` with ClippedAdam: ``loss_and_grads`` on the objective, then an Adam update."""

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


def build_engine(model: nn.Module, config: TrainConfig) -> SVIEngine:
    """The engine named by ``config.engine``."""
    return SVIEngine(model, config)
