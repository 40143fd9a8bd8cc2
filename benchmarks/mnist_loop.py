"""The hand training loop of the MNIST likelihood setting, for probes inside an epoch.

``benchmarks/vamp_gauge.py`` watches the VampPrior's latent gauge step by step (a forward hook on the decoder's
first layer during epoch 1, the mixture's moments after every epoch), which a sweep's run folders cannot give.
This module holds the setting it trains in: ``configs/mnist_vae.yaml``'s split with seed 0 (9,000 train /
1,000 held out, dynamic binarization), the 784-200-200-50 MLP, Adam 1e-3 at batch 100 without clipping, and a
JSONL store of finished rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pyro
import torch
from torch import Tensor, nn

from sweep_report import REPO  # first: it puts this checkout's pyro_vae on the path
from likelihood import Setting as SharedSetting

from pyro_vae.config.run import load_config  # noqa: E402
from pyro_vae.data import ImageData, load_data  # noqa: E402
from pyro_vae.errors import PyroVAEError  # noqa: E402
from pyro_vae.evaluation.loglik import test_log_likelihood  # noqa: E402
from pyro_vae.models import build_model  # noqa: E402
from pyro_vae.train import Trainer  # noqa: E402

CONFIG = REPO / "configs" / "mnist_vae.yaml"
VAMP = ["model.prior.type=vamp", "model.prior.num_components=50"]  # the likelihood benchmark's vamp row


@dataclass
class Setting(SharedSetting):
    """The likelihood benchmark's MLP, latent size and optimizer (:class:`likelihood.Setting`)."""

    def overrides(self) -> List[str]:
        """The setting as overrides of ``configs/mnist_vae.yaml`` (clip_norm=null: plain Adam)."""
        return [f"model.network.hidden_dims={json.dumps(self.hidden_dims)}",
                f"model.network.activation={self.activation}", f"model.latent_dim={self.latent_dim}",
                f"train.lr={self.lr}", f"train.batch_size={self.batch_size}", "train.clip_norm=null",
                "train.progress=false", "train.device=cpu"]


@dataclass
class Split:
    """Grey-level training images (binarized per batch) and the binarized held-out images."""

    train: Tensor
    evaluate: Tensor
    evaluate_name: str = "held-out"


def load_split() -> Split:
    """``configs/mnist_vae.yaml``'s split with seed 0: 9,000 train / 1,000 held out."""
    config = load_config(CONFIG, [])
    if not Path(config.data.root).is_absolute():  # the config's relative root is meant from the repository root
        config.data.root = str((REPO / config.data.root).resolve())
    try:
        data = load_data(config.data, 0)
    except PyroVAEError as e:
        raise SystemExit(f"{e}") from None
    return Split(data.train_x, data.test_x)


def build_vamp(seed: int, split: Split, setting: Setting, extra: Sequence[str] = ()) -> Tuple[nn.Module, Callable[[], None]]:
    """The seeded VampPrior VAE of ``setting`` (``extra``: more overrides) and a function that trains it one epoch."""
    pyro.clear_param_store()  # pyro-vae's modules register in Pyro's global store: start each row from an empty one
    pyro.set_rng_seed(seed)
    config = load_config(CONFIG, setting.overrides() + VAMP + list(extra) + [f"seed={seed}"])
    model = build_model(config.model, tuple(split.train.shape[1:]), 10)
    data = ImageData("mnist", split.train, torch.zeros(split.train.shape[0], dtype=torch.long),
                     split.evaluate[:1], torch.zeros(1, dtype=torch.long), 10, binarize="dynamic")
    trainer = Trainer(model, data, config.train, seed=seed)
    trainer.generator = torch.Generator().manual_seed(seed)
    return model, trainer.train_epoch


@torch.no_grad()
def score(model: nn.Module, x: Tensor, num_samples: int) -> Dict[str, float]:
    """Held-out ELBO and importance-sampled log p(x) (K = ``num_samples``) of a pyro-vae model on ``x``."""
    data = ImageData("mnist", x[:1], torch.zeros(1, dtype=torch.long), x, torch.zeros(x.shape[0], dtype=torch.long), 10)
    ll = test_log_likelihood(model, data, num_samples=num_samples, batch_size=100)
    return {"log_px": ll.mean, "elbo": float(ll.elbo.mean())}


def read_rows(path: Path) -> List[Dict]:
    """The finished rows of a JSONL store (a line cut by a crash mid-write is skipped: that row is redone)."""
    rows: List[Dict] = []
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_row(path: Path, row: Dict) -> None:
    """One finished row, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
