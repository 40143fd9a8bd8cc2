"""Training phases: a model may ask for a pretraining phase that runs before its main objective.

A :class:`Pretrainable` model (e.g. VaDE) declares ``pretrain_epochs`` > 0, a minibatch ``pretrain_loss``
(an autoencoder's reconstruction loss, a plain VAE's −ELBO) and ``end_pretraining``, the step between the
phases (e.g. a Gaussian mixture fitted to the pretrained latent means initialises the prior). The trainer
runs ``pretrain`` (its own progress bar and optimizer) and then ``main``; the phase, the pretraining epoch
and the pretraining optimizer are part of the checkpointed training state, so a resumed run knows which
phase it is in and continues it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..data.dataset import Dataset
from .config import TrainConfig

PRETRAIN, MAIN = "pretrain", "main"


@runtime_checkable
class Pretrainable(Protocol):
    """A model with a pretraining phase."""

    pretrain_epochs: int
    pretrain_lr: float

    def pretrain_loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The pretraining loss of a minibatch, summed over it (a differentiable scalar)."""
        ...

    def end_pretraining(self, data: Dataset, seed: int) -> None:
        """Between the phases: initialise what the main phase needs from the pretrained model (seeded)."""
        ...


def pretrain_epochs(model: nn.Module) -> int:
    """The pretraining epochs a model asks for (0: no pretraining phase)."""
    return int(model.pretrain_epochs) if isinstance(model, Pretrainable) else 0


class PretrainEngine:
    """One Adam step on ``model.pretrain_loss`` (gradients clamped like the main engine's)."""

    name = "pretrain"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        self.model, self.clip = model, config.clip_norm
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optim = torch.optim.Adam(self.params, lr=model.pretrain_lr)

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        self.optim.zero_grad(set_to_none=True)
        loss = self.model.pretrain_loss(x, y)
        loss.backward()
        if self.clip is not None:
            for p in self.params:
                if p.grad is not None:
                    p.grad.clamp_(-self.clip, self.clip)
        self.optim.step()
        return loss.item()

    def state_dict(self) -> Dict[str, Any]:
        return self.optim.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optim.load_state_dict(state)
