"""Run folders: train a config into one, load one back, sample and evaluate from one.

A run folder holds ``config.yaml`` (fully resolved), ``model.pt`` (weights + metadata, loads with
``weights_only=True``), ``metrics.jsonl`` (one JSON object per epoch) and the pictures
``samples.png``, ``reconstructions.png``, ``latent.png`` and ``elbo.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import pyro
import torch
from torch import nn

from . import plots
from .config.run import RunConfig, load_config, save_config
from .config.schema import from_dict, to_dict
from .data import ImageData, load_data
from .errors import ConfigError, PyroVAEError, RunDirError
from .evaluation.bounds import elbo_and_iwae
from .models import build_model
from .train import EpochMetrics, Trainer, load_checkpoint, resolve_device, save_checkpoint

PathLike = Union[str, Path]
CHECKPOINT, CONFIG, METRICS = "model.pt", "config.yaml", "metrics.jsonl"


@dataclass
class Run:
    """A trained model with its config, its metrics history and its folder."""

    path: Path
    config: RunConfig
    model: nn.Module
    history: List[Dict[str, Any]] = field(default_factory=list)
    _data: Optional[ImageData] = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def data(self) -> ImageData:
        """The run's dataset (same seed, hence the same split and test binarization)."""
        if self._data is None:
            self._data = load_data(self.config.data, self.config.seed).to(self.device)
        return self._data

    @torch.no_grad()
    def sample(self, num_samples: int) -> torch.Tensor:
        """E[x|z] for ``num_samples`` prior draws z ~ p(z)."""
        self.model.eval()
        return self.model.generate(num_samples)

    def evaluate(self, num_samples: int = 100) -> Dict[str, Any]:
        """Per-datapoint test ELBO and IWAE bound (nats) with ``num_samples`` z per test point."""
        self.model.eval()
        pyro.set_rng_seed(self.config.seed)
        bounds = elbo_and_iwae(self.model, self.data(), num_samples)
        return {"test_elbo": bounds["elbo"], "test_iwae": bounds["iwae"], "num_samples": num_samples,
                "num_test": int(self.data().test_x.shape[0]), "epoch": len(self.history)}

    def write_pictures(self) -> None:
        """(Re)write samples, reconstructions, latent and ELBO-curve pictures into the run folder."""
        self.model.eval()
        data, n = self.data(), self.config.train.num_images
        with torch.no_grad():
            plots.save_grid(self.sample(n), self.path / "samples.png")
            x, y = data.test_x[:n], data.test_y[:n]
            plots.save_reconstructions(x, self.model.reconstruct(x, y), self.path / "reconstructions.png")
            means = self.model.encode(data.test_x, data.test_y)[0]
        plots.save_latent(means, data.test_y, self.path / "latent.png")
        if self.history:
            plots.save_curves(self.history, self.path / "elbo.png")


def _resolve_paths(config: RunConfig) -> RunConfig:
    root = getattr(config.data, "root", None)
    if root is not None:
        config.data.root = str(Path(root).expanduser().resolve())
    return config


def _default_out(config: RunConfig) -> Path:
    return Path("runs") / f"{config.data.type}-{config.model.type}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config: Union[RunConfig, PathLike, None] = None, out_dir: Optional[PathLike] = None,
          overrides: Optional[List[str]] = None) -> Run:
    """Train ``config`` (a RunConfig, a YAML path, or None for the default) into run folder ``out_dir``.

    Each epoch appends to ``metrics.jsonl`` and atomically rewrites ``model.pt``, so a crash keeps
    the last finished epoch.
    """
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides or [])
    elif overrides:
        raise ConfigError("overrides apply to a config file; edit the RunConfig object directly instead")
    config = _resolve_paths(config)
    out = Path(out_dir) if out_dir is not None else _default_out(config)
    if (out / CHECKPOINT).exists():
        raise RunDirError(f"{out} already holds a run ({CHECKPOINT}); choose another --out to keep it")
    pyro.set_rng_seed(config.seed)
    pyro.clear_param_store()
    device = resolve_device(config.train.device)
    data = load_data(config.data, config.seed).to(device)
    model = build_model(config.model, data.shape, data.num_classes).to(device)
    trainer = Trainer(model, data, config.train, seed=config.seed)

    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / CONFIG)
    (out / METRICS).write_text("")
    run = Run(out, config, model, _data=data)

    def on_epoch_end(t: Trainer, metrics: EpochMetrics) -> None:
        row = asdict(metrics)
        run.history.append(row)
        with open(out / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        save_checkpoint(checkpoint_payload(run, t), out / CHECKPOINT)

    trainer.fit(on_epoch_end)
    run.write_pictures()
    return run


def checkpoint_payload(run: Run, trainer: Optional[Trainer] = None) -> Dict[str, Any]:
    """What ``model.pt`` holds: weights, resolved config, data shape and (when training) loop state."""
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "config": to_dict(run.config),
        "data_shape": list(run.model.data_shape),
        "num_classes": int(run.model.num_classes),
        "history": list(run.history),
    }
    if trainer is not None:
        payload["trainer"] = trainer.state()
    return payload


def load_run(run_dir: PathLike, device: Union[str, torch.device] = "cpu") -> Run:
    """Load the model of run folder ``run_dir`` (weights only: never executes code from the file)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a folder (expected a run folder with {CHECKPOINT})")
    if not (path / CHECKPOINT).is_file():
        raise RunDirError(f"{path}: not a run folder (no {CHECKPOINT})")
    payload = load_checkpoint(path / CHECKPOINT)
    try:
        config = from_dict(RunConfig, payload["config"])
        model = build_model(config.model, tuple(payload["data_shape"]), payload["num_classes"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, PyroVAEError) as e:
        raise RunDirError(f"{path / CHECKPOINT}: inconsistent checkpoint ({str(e).splitlines()[0]})") from None
    model.to(device).eval()
    return Run(path, config, model, list(payload.get("history", [])))
