"""The training loop's typed config lives in :mod:`pyro_vae.config.train`; re-exported here."""

from ..config.train import TrainConfig

__all__ = ["TrainConfig"]
