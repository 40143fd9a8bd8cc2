"""What a training loop tells the rest of a run: a :class:`Callback` is called at the end of each epoch, at the
end of each phase and when a stop signal interrupts training.

:meth:`Trainer.fit <pyro_vae.train.trainer.Trainer.fit>` calls

* ``on_epoch_end(trainer, metrics)`` after each epoch (``metrics`` its :class:`EpochMetrics` row; ``None`` for
  an epoch of a pretraining phase, which records no row);
* ``on_phase_end(trainer, phase)`` once a phase is over (``"pretrain"`` after ``end_pretraining``, ``"main"``
  when the last epoch is done);
* ``on_interrupt(trainer, error)`` when SIGINT/SIGTERM stopped training after a step (the trainer's state is
  consistent and its weights finite), before :class:`~pyro_vae.train.signals.Interrupted` propagates.

The run folder's checkpoints, metrics rows and pictures, the trackers and the user's per-epoch functions are
callbacks (:mod:`pyro_vae.train.recorders`, :mod:`pyro_vae.tracking`); :class:`Callbacks` calls several in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .signals import Interrupted
    from .trainer import EpochMetrics


class Callback:
    """A no-op for every event: subclasses override the ones they act on."""

    def on_epoch_end(self, trainer: Any, metrics: Optional["EpochMetrics"]) -> None:
        """After each epoch; ``metrics`` is None for an epoch of a pretraining phase."""

    def on_phase_end(self, trainer: Any, phase: str) -> None:
        """After a phase (``"pretrain"``, ``"main"``)."""

    def on_interrupt(self, trainer: Any, error: "Interrupted") -> None:
        """After a stop signal ended training at a consistent step."""


class Callbacks(Callback):
    """Several callbacks called as one, in their order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks: List[Callback] = list(callbacks)

    def on_epoch_end(self, trainer: Any, metrics: Optional["EpochMetrics"]) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(trainer, metrics)

    def on_phase_end(self, trainer: Any, phase: str) -> None:
        for callback in self.callbacks:
            callback.on_phase_end(trainer, phase)

    def on_interrupt(self, trainer: Any, error: "Interrupted") -> None:
        for callback in self.callbacks:
            callback.on_interrupt(trainer, error)


def as_callbacks(callbacks: Optional[Iterable[Callback]]) -> Callbacks:
    """``callbacks`` (None, one callback or several) as one :class:`Callbacks`."""
    if isinstance(callbacks, Callbacks):
        return callbacks
    if isinstance(callbacks, Callback):
        return Callbacks([callbacks])
    return Callbacks(callbacks or ())
