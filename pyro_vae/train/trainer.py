"""The training loop: SVI steps over shuffled minibatches, a progress bar, per-epoch evaluation."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.base import ImageData
from ..errors import TrainingError
from ..evaluation.bounds import test_elbo
from .config import TrainConfig
from .engine import build_engine


@dataclass
class EpochMetrics:
    """One line of ``metrics.jsonl``: per-datapoint ELBOs in nats (higher is better)."""

    epoch: int
    step: int
    train_elbo: float
    test_elbo: float
    seconds: float


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device: 'cuda' requested but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


class Trainer:
    """Fits ``model.model``/``model.guide`` to ``data``, one engine step (SVI by default) per minibatch."""

    def __init__(self, model: nn.Module, data: ImageData, config: TrainConfig, seed: int = 0) -> None:
        self.model, self.data, self.config = model, data, config
        self.engine = build_engine(model, config)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.step = 0, 0
        self.history: List[EpochMetrics] = []

    def state(self) -> Dict:
        """Optimizer and loop state for a checkpoint."""
        return {"optimizer": self.engine.state_dict(), "epoch": self.epoch, "step": self.step,
                "history": [asdict(m) for m in self.history], "generator": self.generator.get_state()}

    def _check(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise TrainingError(
                f"non-finite loss ({loss}) at epoch {self.epoch + 1}, step {self.step}: likely causes are a "
                "learning rate too high (train.lr), a Gaussian sigma too small (model.likelihood.sigma), "
                "or data outside the likelihood's range"
            )

    def train_epoch(self, bar: Optional[tqdm] = None) -> float:
        """One pass over the training set; returns the mean per-datapoint training ELBO."""
        self.model.train()
        total, count = 0.0, 0
        for x, y in self.data.batches("train", self.config.batch_size, shuffle=True, generator=self.generator):
            loss = self.engine.step(x, y)
            self.step += 1
            self._check(loss)
            total, count = total - loss, count + x.shape[0]
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=self.epoch + 1, step=self.step, elbo=f"{total / count:.2f}", refresh=False)
        return total / count

    def fit(self, on_epoch_end: Optional[Callable[["Trainer", EpochMetrics], None]] = None) -> List[EpochMetrics]:
        """Train until ``config.epochs``; ``on_epoch_end`` runs after each (e.g. to checkpoint)."""
        self.model.likelihood.validate(self.data.train_x)
        self.model.likelihood.validate(self.data.test_x)
        steps_per_epoch = math.ceil(self.data.train_x.shape[0] / self.config.batch_size)
        remaining = self.config.epochs - self.epoch
        with tqdm(total=remaining * steps_per_epoch, disable=not self.config.progress, desc="train",
                  unit="step", dynamic_ncols=True) as bar:
            while self.epoch < self.config.epochs:
                start = time.perf_counter()
                train_elbo = self.train_epoch(bar)
                self.model.eval()
                held_out = test_elbo(self.model, self.data, self.config.eval_samples)
                self.epoch += 1
                metrics = EpochMetrics(self.epoch, self.step, train_elbo, held_out, time.perf_counter() - start)
                self.history.append(metrics)
                bar.set_postfix(epoch=self.epoch, step=self.step, elbo=f"{train_elbo:.2f}",
                                test=f"{held_out:.2f}")
                if on_epoch_end is not None:
                    on_epoch_end(self, metrics)
        return self.history
