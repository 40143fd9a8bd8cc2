"""What ``resume`` may change, and when a checkpoint can be continued.

A resumed run is the same run: only ``train.epochs`` (to train longer, never shorter), ``train.progress`` and
``train.early_stopping`` (when to stop) may be overridden, and a checkpoint without training state, past its last
epoch or stopped early, is refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..config.loading import apply_overrides
from ..config.run import RunConfig
from ..config.schema import from_dict, to_dict
from ..errors import ConfigError, RunDirError
from ..registry import only_imported
from .stopping import describe, stopped_early

#: what `--resume` may change: anything else changes the run
RESUMABLE_KEYS = ("train.epochs", "train.progress", "train.early_stopping.patience", "train.early_stopping.min_delta",
                  "train.early_stopping.monitor")


def training_state(payload: Dict[str, Any], file: Path) -> Dict[str, Any]:
    """The trainer's state a ``model.pt`` payload holds (a RunDirError for weights only)."""
    if "trainer" not in payload:
        raise RunDirError(f"{file}: holds weights only, no training state to resume from")
    return payload["trainer"]


def resumed_config(config: RunConfig, overrides: Optional[List[str]], imports: Sequence[str] = ()) -> RunConfig:
    """``config`` with ``overrides`` of :data:`RESUMABLE_KEYS` applied; any other key is a ConfigError."""
    if not overrides:
        return config
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key not in RESUMABLE_KEYS:
            raise ConfigError(f"{key}: cannot be changed when resuming (only {', '.join(RESUMABLE_KEYS)}); "
                              "train a new run for a different config")
    with only_imported(imports):
        return from_dict(RunConfig, apply_overrides(to_dict(config), overrides, RunConfig))


def check_continues(state: Dict[str, Any], config: RunConfig, path: Path) -> None:
    """A ConfigError when ``train.epochs`` would shorten the run, a RunDirError when it has nothing left to do
    (its epochs done, or its held-out bound levelled off under ``train.early_stopping``)."""
    done = state.get("epoch", 0) + (1 if state.get("batch") else 0)  # epochs finished, or started
    if done > config.train.epochs:
        raise ConfigError(f"train.epochs={config.train.epochs}: {path} has already "
                          f"{'finished' if not state.get('batch') else 'started'} epoch {done}; give "
                          f"train.epochs >= {done} (resume never shortens a run)")
    if state.get("epoch", 0) >= config.train.epochs:
        raise RunDirError(f"{path}: already finished its {config.train.epochs} epochs; to train longer: "
                          f"pyro-vae train --resume {path} train.epochs=N")
    stopping = config.train.early_stopping
    if not state.get("batch") and stopped_early(state.get("history", []), stopping):
        raise RunDirError(f"{path}: stopped at epoch {state.get('epoch', 0)}, its "
                          f"{describe(state.get('history', []), stopping)}; to train on: pyro-vae train --resume "
                          f"{path} train.early_stopping.patience=N (larger) or train.early_stopping.patience=null")
