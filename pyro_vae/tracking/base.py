"""A tracker: ``log_epoch`` after each epoch, ``log_pictures`` at the end of training, then ``close``; as a
training callback (:mod:`pyro_vae.train.callbacks`) it does each at its event."""

from __future__ import annotations

from typing import Any

from ..train.callbacks import Callback
from ..train.phases import MAIN


class Tracker(Callback):
    """Logs a training run somewhere; ``run`` (set by :func:`pyro_vae.tracking.open_tracker`) is the run whose
    pictures it logs when the main phase ends."""

    run: Any = None

    def log_epoch(self, trainer: Any, metrics: Any) -> None:
        raise NotImplementedError

    def log_pictures(self, run: Any, step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def on_epoch_end(self, trainer: Any, metrics: Any) -> None:
        if metrics is not None:  # (a pretraining epoch records no metrics)
            self.log_epoch(trainer, metrics)

    def on_phase_end(self, trainer: Any, phase: str) -> None:
        if phase == MAIN:
            if self.run is not None:
                self.log_pictures(self.run, trainer.step)
            self.close()
