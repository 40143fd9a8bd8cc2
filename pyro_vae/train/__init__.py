"""Training: the SVI loop, its typed config and checkpoints."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .trainer import EpochMetrics, Trainer, resolve_device

__all__ = ["EpochMetrics", "TrainConfig", "Trainer", "load_checkpoint", "resolve_device", "save_checkpoint"]
