"""pyro-vae: variational autoencoders written as probabilistic programs in Pyro.

Quick start::

    from pyro_vae import load_config, train, load_run
    run = train(load_config("configs/digits_vae.yaml", ["train.epochs=10"]), "runs/demo")
    print(run.evaluate(num_samples=100))
"""

from . import data, infer, likelihoods, models, nets, priors  # noqa: F401  (register every component)
from .config.run import RunConfig, load_config, save_config
from .errors import ConfigError, DataError, PyroVAEError, RunDirError, TrainingError
from .registry import DATASETS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS
from .run import Run, load_run, resume, train

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "DATASETS", "DataError", "LIKELIHOODS", "MODELS", "NETWORKS", "OBJECTIVES", "PRIORS",
    "PyroVAEError", "Run", "RunConfig", "RunDirError", "TrainingError", "load_config", "load_run", "resume",
    "save_config", "train",
]
