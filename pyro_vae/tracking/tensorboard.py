"""TensorBoard logging (``train.tensorboard: true``; needs the optional extra ``pip install 'pyro-vae[tensorboard]'``).

Writes into ``RUN_DIR/tensorboard/``, beside ``metrics.jsonl``: per epoch the train/test ELBO, the
test ELBO's parts (reconstruction, KL, closed-form KL) and the objective's latent weight β(t); at the
end of training the samples and reconstructions as image grids; after ``pyro-vae evaluate`` every
scalar of the evaluation report under ``eval/``. View with ``tensorboard --logdir RUN_DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from torch import Tensor

from ..errors import ConfigError
from ..nofollow import refuse_link
from .base import Tracker

PathLike = Union[str, Path]
FOLDER = "tensorboard"


def summary_writer(folder: PathLike) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``folder/tensorboard``; a ConfigError when not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("train.tensorboard: needs the tensorboard package "
                          "(pip install 'pyro-vae[tensorboard]', or set train.tensorboard: false)") from None
    return SummaryWriter(log_dir=str(refuse_link(Path(folder) / FOLDER)))  # (a link there: refused, not followed)


def _grid(images: Tensor, nrow: int = 8) -> Tensor:
    from ..plots import make_grid

    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)


class TensorBoardTracker(Tracker):
    """Logs a training run: ``log_epoch`` after each epoch, ``log_pictures`` at the end, then ``close``."""

    def __init__(self, folder: PathLike, eval_samples: int = 10) -> None:
        self.writer = summary_writer(folder)
        self.eval_samples = eval_samples

    def log_epoch(self, trainer: Any, metrics: Any) -> None:
        from ..evaluation.decomposition import elbo_parts
        from ..infer.objectives import LatentWeightedMixin

        step = metrics.step
        self.writer.add_scalar("elbo/train", metrics.train_elbo, step)
        self.writer.add_scalar("elbo/test", metrics.test_elbo, step)
        self.writer.add_scalar("time/epoch_seconds", metrics.seconds, step)
        with torch.no_grad():
            parts = elbo_parts(trainer.model, trainer.data, self.eval_samples)
        for name, value in parts.items():
            self.writer.add_scalar(f"test/{name}", value, step)
        if isinstance(trainer.engine.elbo, LatentWeightedMixin):  # (every engine declares its Pyro ELBO)
            self.writer.add_scalar("objective/beta", trainer.engine.elbo.weight(), step)
        self.writer.flush()

    def log_images(self, tag: str, images: Tensor, step: int, nrow: int = 8) -> None:
        self.writer.add_image(tag, _grid(images, nrow), step)

    def log_pictures(self, run: Any, step: int) -> None:
        """Samples and input/reconstruction grids of a finished run."""
        model, data, n = run.model, run.data(), run.config.train.num_images
        with torch.no_grad():
            self.log_images("images/samples", run.sample(n), step)
            x, y = data.test_x[:n], data.test_y[:n]
            self.log_images("images/inputs", x, step)
            self.log_images("images/reconstructions", model.reconstruct(x, y), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def log_evaluation(folder: PathLike, report: Dict[str, Any], step: int) -> None:
    """Every scalar of an evaluation report under ``eval/`` (e.g. ``eval/test_log_likelihood``)."""
    writer = summary_writer(folder)
    for name, value in report.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(f"eval/{name}", value, step)
    writer.close()
