"""Training: the SVI loop, its typed config and checkpoints.

The names below load on first use (module ``__getattr__``), so that :mod:`pyro_vae.train.signals`, which the
command installs before anything else, imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"EpochMetrics": "trainer", "Trainer": "trainer", "resolve_device": "trainer", "TrainConfig": "config",
            "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
