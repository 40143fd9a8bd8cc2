"""The whole run config: ``seed``, ``data``, ``model`` and ``train`` (the schema of ``configs/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from ..nofollow import write_bytes
from ..registry import DATASETS, MODELS
from .train import TrainConfig
from .loading import load_config_dict
from .schema import component, from_dict, opt, to_dict


@dataclass
class RunConfig:
    seed: int = opt(0, "seed for torch, pyro, data splits and binarization", lambda s: 0 <= s < 2**32,
                    "an integer in [0, 2**32)")  # NumPy's seed range (pyro.set_rng_seed seeds NumPy too)
    data: Any = component(DATASETS, lambda: DATASETS.get("digits").config_cls(), "the dataset")
    model: Any = component(MODELS, lambda: MODELS.get("vae").config_cls(), "the model")
    train: TrainConfig = field(default_factory=TrainConfig)


def load_config(path: Optional[Union[str, Path]] = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Parse YAML file ``path`` (None: the packaged default) with ``key=value`` overrides into a RunConfig."""
    return from_dict(RunConfig, load_config_dict(path, overrides, RunConfig))


def save_config(config: RunConfig, path: Union[str, Path]) -> None:
    """Write the fully resolved config as YAML (it loads back to an equal RunConfig), atomically: a temp
    file renamed over ``path``, so a crash never leaves half a config; a link in its place is refused."""
    write_bytes(path, yaml.safe_dump(to_dict(config), sort_keys=False).encode())
