"""pyro-vae: variational autoencoders written as probabilistic programs in Pyro.

Quick start::

    from pyro_vae import load_config, train, load_run
    run = train(load_config("configs/digits_vae.yaml", ["train.epochs=10"]), "runs/demo")
    print(run.evaluate(num_samples=100))

The names below load on first use (module ``__getattr__``), so ``import pyro_vae`` and ``pyro-vae --help``
do not import torch or Pyro; the built-in components register on the first registry lookup.
"""

from __future__ import annotations

from . import _startup  # noqa: F401  (first: as the pyro-vae command, a signal while starting is one line)
import importlib
import sys
import types
from typing import Any, List

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "errors", "DataError": "errors", "PyroVAEError": "errors", "RunDirError": "errors",
    "TrainingError": "errors",
    "DATASETS": "registry", "GUIDES": "registry", "LIKELIHOODS": "registry", "MODELS": "registry", "NETWORKS": "registry",
    "OBJECTIVES": "registry", "PRIORS": "registry",
    "RunConfig": "config.run", "load_config": "config.run", "save_config": "config.run",
    "Run": "run", "load_run": "run", "resume": "run", "train": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")  # a submodule: pyro_vae.models, ...
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted([*globals(), *_EXPORTS])


class _Package(types.ModuleType):
    """``pyro_vae.train`` is the function :func:`pyro_vae.run.train`, as the eager imports made it: the import
    system does not rebind it to the subpackage :mod:`pyro_vae.train` (``from pyro_vae.train import ...`` and
    ``sys.modules`` still reach the subpackage)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
if isinstance(globals().get("train"), types.ModuleType):  # bound while _startup imported pyro_vae.train.signals
    del globals()["train"]
