"""Experiment tracking of a training run: TensorBoard (``train.tensorboard``) and MLflow (``train.mlflow``).

A tracker has ``log_epoch(trainer, metrics)`` (after each epoch), ``log_pictures(run, step)`` (at the end of
training) and ``close()``; :func:`open_tracker` combines the ones a run's config turns on into one training
callback (:class:`~pyro_vae.train.callbacks.Callback`): ``on_epoch_end`` logs the epoch, ``on_phase_end`` of the
main phase logs the run's pictures and closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..config.run import RunConfig
from ..config.train import TrainConfig
from ..errors import ConfigError
from .base import Tracker
from .tensorboard import FOLDER, TensorBoardTracker, summary_writer

PathLike = Union[str, Path]

__all__ = ["FOLDER", "Tracker", "Trackers", "check_trackers", "TensorBoardTracker", "log_evaluation", "open_tracker",
           "summary_writer"]


class Trackers(Tracker):
    """Several trackers called as one; as a training callback, those of ``run``."""

    def __init__(self, trackers: List[Tracker], run: Any = None) -> None:
        self.trackers, self.run = trackers, run

    def log_epoch(self, trainer: Any, metrics: Any) -> None:
        for tracker in self.trackers:
            tracker.log_epoch(trainer, metrics)

    def log_pictures(self, run: Any, step: int) -> None:
        for tracker in self.trackers:
            tracker.log_pictures(run, step)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def _train_section(config: Union[RunConfig, TrainConfig]) -> TrainConfig:
    return config.train if isinstance(config, RunConfig) else config


def check_trackers(config: Union[RunConfig, TrainConfig]) -> None:
    """A ConfigError (one line) when a tracker the config turns on is not installed: checked before a run starts."""
    train = _train_section(config)
    if train.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("train.tensorboard: needs the tensorboard package (pip install "
                              "'pyro-vae[tensorboard]', or set train.tensorboard: false)") from None
    if train.mlflow:
        from .mlflow import client

        client()


def open_tracker(config: Union[RunConfig, TrainConfig], folder: PathLike, resumed: bool = False, run: Any = None) -> Optional[Trackers]:
    """The trackers a run config turns on (``train.tensorboard``, ``train.mlflow``), else None. ``config``: the
    RunConfig (or just its ``train`` section); ``resumed``: a resumed run continues its MLflow run; ``run``: the
    run whose pictures they log at the end of training."""
    train = _train_section(config)
    trackers: List[Tracker] = []
    if train.tensorboard:
        trackers.append(TensorBoardTracker(folder, train.eval_samples))
    if train.mlflow:
        from .mlflow import MlflowTracker

        trackers.append(MlflowTracker(config, folder, resumed))
    return Trackers(trackers, run) if trackers else None


def log_evaluation(folder: PathLike, report: Dict[str, Any], step: int,
                   train_config: Optional[TrainConfig] = None) -> None:
    """Every scalar of an evaluation report under ``eval/``, to each tracker the run's ``train`` config turns on
    (no config: TensorBoard)."""
    if train_config is None or train_config.tensorboard:
        from .tensorboard import log_evaluation as to_tensorboard

        to_tensorboard(folder, report, step)
    if train_config is not None and train_config.mlflow:
        from .mlflow import log_evaluation as to_mlflow

        to_mlflow(folder, report, step)
