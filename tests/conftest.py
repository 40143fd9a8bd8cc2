"""Shared fixtures: seeding, tiny configs, and the real MNIST test set when it is present."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import pyro
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MNIST_RAW = REPO.parent / "shared" / "data" / "MNIST" / "raw"


@pytest.fixture(autouse=True)
def _seed():
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    yield


@pytest.fixture
def mnist_root() -> Path:
    """``../shared/data/MNIST/raw`` (the real t10k IDX files); the test is skipped when absent."""
    if not (MNIST_RAW / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {MNIST_RAW}")
    return MNIST_RAW


def tiny_model(model_type: str = "vae", shape: Tuple[int, ...] = (1, 4, 4), num_classes: int = 10, *,
               latent_dim: int = 2, hidden_dims: Sequence[int] = (8,), seed: Optional[int] = None, **fields: Any):
    """A model of ``model_type`` for data of ``shape`` with a tiny MLP (``hidden_dims``) and ``latent_dim``; ``fields``
    are more keys of its config (as YAML would give them; keys the model's config lacks are left out); ``seed``
    seeds torch first."""
    from pyro_vae.config.schema import from_dict
    from pyro_vae.models import MODELS, build_model

    config_cls = MODELS.get(model_type).config_cls
    options = {"latent_dim": latent_dim, "network": {"type": "mlp", "hidden_dims": list(hidden_dims)}, **fields}
    options = {k: v for k, v in options.items() if k in config_cls.__dataclass_fields__}
    if seed is not None:
        torch.manual_seed(seed)
    return build_model(from_dict(config_cls, options), tuple(shape), num_classes)


@pytest.fixture
def tiny() -> Callable[..., Any]:
    """:func:`tiny_model`, as a fixture."""
    return tiny_model


def tiny_overrides(*extra: str) -> List[str]:
    """Overrides for a seconds-long digits run: a small net, few epochs, no progress bar."""
    return ["train.epochs=2", "train.progress=false", "model.network.hidden_dims=[32]", "model.latent_dim=2",
            "train.num_images=16", "train.eval_samples=2", *extra]


@pytest.fixture
def hook_step(monkeypatch) -> Callable[[int, Callable], None]:
    """``hook_step(n, action)``: after the trainer's optimizer step number ``n`` (1-based), the step returns
    ``action(engine, loss)`` instead of its loss (to interrupt, poison or fail a run at a chosen point)."""
    from pyro_vae.train import trainer as trainer_module

    build = trainer_module.build_engine

    def install(at_step: int, action: Callable) -> None:
        def build_hooked(model, config):
            engine = build(model, config)
            step, count = engine.step, [0]

            def hooked(x, y=None):
                loss = step(x, y)
                count[0] += 1
                return action(engine, loss) if count[0] == at_step else loss

            engine.step = hooked
            return engine

        monkeypatch.setattr(trainer_module, "build_engine", build_hooked)

    return install


@pytest.fixture
def interrupt_pretraining(monkeypatch) -> Callable[[int], Callable[[], None]]:
    """``interrupt_pretraining(n)``: SIGINT right after the pretraining phase's step number ``n`` (1-based), as a
    user's Ctrl-C; returns ``restore()``, which puts the phase's step back for the resumed run."""
    import os
    import signal

    from pyro_vae.train import phases

    step = phases.PretrainEngine.step

    def install(at_step: int) -> Callable[[], None]:
        count = [0]

        def interrupting(self, x, y=None):
            loss = step(self, x, y)
            count[0] += 1
            if count[0] == at_step:
                os.kill(os.getpid(), signal.SIGINT)
            return loss

        monkeypatch.setattr(phases.PretrainEngine, "step", interrupting)
        return lambda: monkeypatch.setattr(phases.PretrainEngine, "step", step)

    return install


def same_metrics(a, b) -> bool:
    """Two runs' histories agree in step, training and held-out ELBO at every epoch."""
    return [(r["step"], r["train_elbo"], r["test_elbo"]) for r in a.history] == \
        [(r["step"], r["train_elbo"], r["test_elbo"]) for r in b.history]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 1-epoch digits run (model.pt, best.pt, config.yaml, pictures), trained once per session:
    copy it before changing it."""
    import torch

    from pyro_vae import train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    torch.set_num_threads(1)
    train(None, out, tiny_overrides("train.epochs=1", "data.limit=100"))
    return out
