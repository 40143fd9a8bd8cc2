"""Which engine a run uses (``train.engine``): ``auto`` resolved, DistributedDataParallel under ``torchrun``.

Kept apart from :mod:`.engine` and :mod:`.distributed` so that those two import in one direction only
(``distributed`` builds on ``engine``) and this module builds on both.
"""

from __future__ import annotations

from typing import Union

from torch import nn

from ..errors import ConfigError
from ..infer.objectives import build_elbo, check_objective
from . import distributed
from .config import TrainConfig
from .engine import SVIEngine, TorchEngine, supports_torch_engine

Engine = Union[SVIEngine, TorchEngine]
ENGINES = {"svi": SVIEngine, "torch": TorchEngine}


def resolve_engine(model: nn.Module, config: TrainConfig) -> str:
    """``auto`` is ``torch`` when the objective supports it, else ``svi``."""
    name = config.engine
    if name != "auto":
        return name
    return "torch" if supports_torch_engine(build_elbo(config.objective, model.max_plate_nesting)) else "svi"


def build_engine(model: nn.Module, config: TrainConfig) -> Engine:
    """The engine named by ``config.engine`` (DDP-wrapped under ``torchrun``)."""
    check_objective(model, config.objective)
    name = resolve_engine(model, config)
    if distributed.is_distributed():
        if name != "torch":
            raise ConfigError(f"train.engine: {name!r} cannot run data-parallel under torchrun "
                              "(use engine: torch or auto with a Trace*_ELBO objective)")
        return distributed.DistributedEngine(model, config)
    engine = ENGINES[name](model, config)
    if name == "svi" and config.engine == "auto" and isinstance(engine, SVIEngine):
        engine.fall_back(f"objective {config.objective.type!r} has no differentiable_loss")
    return engine
