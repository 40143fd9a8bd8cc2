"""Training: the SVI loop, its typed config and checkpoints.

The names below load on first use (module ``__getattr__``), so that :mod:`pyro_vae.train.signals`, which the
command installs before anything else, imports no torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {"EpochMetrics": "trainer", "Trainer": "trainer", "resolve_device": "trainer", "TrainConfig": "config",
            "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
