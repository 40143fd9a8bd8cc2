"""What a training run records in its folder, as training callbacks (:mod:`pyro_vae.train.callbacks`).

In the order :func:`pyro_vae.run.train` lists them, after each epoch: the run's history row (every rank), then
on rank 0 ``model.pt`` (and ``config.yaml`` when it changed; ``best.pt`` when the held-out ELBO improved), then
the ``metrics.jsonl`` row, then the trackers and the user's functions ``f(run, metrics)``; once training is
done the pictures. A stop signal checkpoints ``model.pt`` where training stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

from ..config.run import save_config
from ..config.schema import to_dict
from ..errors import OutputError
from ..nofollow import append_text
from .callbacks import Callback
from .checkpoint import save_checkpoint
from .phases import MAIN

CHECKPOINT, CONFIG, METRICS = "model.pt", "config.yaml", "metrics.jsonl"
BEST = "best.pt"  # the epoch with the highest held-out ELBO (model.pt is the last one)
T = TypeVar("T")


def write_file(path: Path, write: Callable[[T, Path], None], value: T) -> None:
    """``write(value, path)``; an OSError (disk full, no permission) is one line naming the file."""
    try:
        write(value, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e}); the run folder keeps its last saved "
                          "checkpoint") from None


def checkpoint_payload(run: Any, trainer: Any = None) -> Dict[str, Any]:
    """What ``model.pt``/``best.pt`` hold: weights, resolved config, data shape, history and (``model.pt``,
    while training) the trainer's state: optimizer, counters, position in the epoch, RNG streams."""
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "config": to_dict(run.config),
        "data_shape": list(run.model.data_shape),
        "num_classes": int(run.model.num_classes),
        "history": list(run.history),
    }
    if run.standardizer is not None:  # data.standardize: undone in samples after loading
        payload["data_stats"] = run.standardizer.to_dict()
    if trainer is not None:
        payload["trainer"] = trainer.state()
        payload["engine"] = trainer.engine.describe()  # which path computed the loss and why
        payload["threads"] = trainer.threads  # intra-op CPU threads of its steps (train.threads)
    return payload


class History(Callback):
    """``run.history`` gains each epoch's row (on every rank: the checkpoint's history is this list)."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
        if metrics is not None:
            self.run.history.append(asdict(metrics))


class Checkpoints(Callback):
    """``model.pt`` after each epoch (the one it replaces kept as ``model.prev.pt``) with ``config.yaml`` to match
    it, ``best.pt`` when the held-out ELBO improved; during a pretraining phase and when a stop signal came,
    ``model.pt`` where training is."""

    def __init__(self, run: Any) -> None:
        self.run, self.folder = run, Path(run.path)
        self.best = max((row["test_elbo"] for row in run.history), default=-math.inf)
        self.written: Optional[Dict[str, Any]] = None  # the config as config.yaml last got it

    def save_last(self, trainer: Any) -> None:
        save_checkpoint(checkpoint_payload(self.run, trainer), self.folder / CHECKPOINT, keep_previous=True)
        config = to_dict(self.run.config)
        if self.written != config:  # rewritten only when it changed (resume: a new train.epochs)
            write_file(self.folder / CONFIG, save_config, self.run.config)
            self.written = config

    def save_phase(self, trainer: Any) -> None:
        save_checkpoint(checkpoint_payload(self.run, trainer), self.folder / CHECKPOINT)

    def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
        if metrics is None:  # a pretraining epoch: the state only
            self.save_phase(trainer)
            return
        self.save_last(trainer)
        if metrics.test_elbo > self.best:
            self.best = metrics.test_elbo
            save_checkpoint(checkpoint_payload(self.run), self.folder / BEST)

    def on_phase_end(self, trainer: Any, phase: str) -> None:
        if phase != MAIN:
            self.save_phase(trainer)

    def on_interrupt(self, trainer: Any, error: Any) -> None:
        self.save_last(trainer)


class MetricsRows(Callback):
    """One JSON row a epoch appended to ``metrics.jsonl``."""

    def __init__(self, run: Any) -> None:
        self.path = Path(run.path) / METRICS

    def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
        if metrics is not None:
            write_file(self.path, _append_row, asdict(metrics))


def _append_row(row: Dict[str, Any], path: Path) -> None:
    append_text(path, json.dumps(row) + "\n")


class Pictures(Callback):
    """The run's pictures (:mod:`pyro_vae.pictures`), once training is done."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def on_phase_end(self, trainer: Any, phase: str) -> None:
        if phase == MAIN:
            self.run.write_pictures()


class EpochFunctions(Callback):
    """The user's functions ``f(run, metrics)``, after each epoch's files are written."""

    def __init__(self, run: Any, functions: Sequence[Callable[[Any, Any], None]]) -> None:
        self.run, self.functions = run, list(functions)

    def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
        if metrics is not None:
            for function in self.functions:
                function(self.run, metrics)


def recorders(run: Any, main: bool, trackers: Optional[Callback] = None,
              functions: Sequence[Callable[[Any, Any], None]] = ()) -> List[Callback]:
    """A training run's callbacks in order: the history, then (rank 0, which alone writes) checkpoints,
    metrics rows, pictures, ``trackers`` and the user's ``functions``."""
    if not main:
        return [History(run)]
    return [History(run), Checkpoints(run), MetricsRows(run), Pictures(run),
            *([trackers] if trackers is not None else []), EpochFunctions(run, functions)]
