"""Training and run folders through the Python API; the learning-rate decay."""

import json
import os
import signal

import pytest
import torch

from conftest import tiny_overrides
from pyro_vae import load_config, load_run, train
from pyro_vae.data import load_data
from pyro_vae.evaluation import test_elbo as held_out_elbo
from pyro_vae.models import build_model

RUN_FILES = {"config.yaml", "model.pt", "metrics.jsonl", "samples.png", "reconstructions.png", "latent.png",
             "elbo.png"}


def test_short_training_improves_held_out_elbo(tmp_path):
    config = load_config(None, ["train.epochs=8", "train.progress=false", "train.eval_samples=5"])
    data = load_data(config.data, config.seed)
    untrained = held_out_elbo(build_model(config.model, data.shape), data, num_samples=5)
    run = train(config, tmp_path / "run")
    assert run.history[-1]["test_elbo"] > untrained + 10.0  # untrained ≈ −44 nats, 8 epochs ≈ −27
    assert run.history[-1]["test_elbo"] > run.history[0]["test_elbo"]


def test_run_folder_contents_and_reload(tmp_path):
    run = train(load_config(None, tiny_overrides()), tmp_path / "run")
    assert RUN_FILES <= {p.name for p in (tmp_path / "run").iterdir()}
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"epoch", "train_elbo", "test_elbo"} <= set(rows[0])
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert payload["data_shape"] == [1, 8, 8]
    loaded = load_run(tmp_path / "run")
    assert loaded.config == run.config
    for (k, a), b in zip(run.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a.cpu(), b), k


def test_same_seed_same_metrics(tmp_path):
    a = train(load_config(None, tiny_overrides()), tmp_path / "a").history
    b = train(load_config(None, tiny_overrides()), tmp_path / "b").history
    assert [(r["train_elbo"], r["test_elbo"]) for r in a] == [(r["train_elbo"], r["test_elbo"]) for r in b]


def test_mnist_config_trains_from_raw_files(tmp_path, mnist_root):
    config = load_config("configs/mnist_vae.yaml", tiny_overrides(f"data.root={mnist_root}", "train.epochs=1",
                                                                  "data.limit=600"))
    run = train(config, tmp_path / "run")
    assert run.model.data_shape == (1, 28, 28) and run.history[-1]["test_elbo"] < 0


# ---- learning-rate decay (train.lr_decay) ------------------------------------------------------------------

def engine_lr(engine) -> float:
    """The learning rate the engine's optimizer(s) step with (SVI: one optimizer per parameter)."""
    optimizers = list(engine.optim.optim_objs.values()) if engine.name == "svi" else [engine.optim]
    lrs = {group["lr"] for optimizer in optimizers for group in optimizer.param_groups}
    assert len(lrs) == 1, lrs
    return lrs.pop()


def decay_overrides(engine: str, *extra: str) -> list:
    return tiny_overrides("data.limit=600", "train.epochs=3", "train.lr=0.004", f"train.engine={engine}",
                          "train.lr_decay.factor=0.5", "train.lr_decay.every_epochs=2", *extra)


@pytest.mark.parametrize("engine", ["torch", "svi"])
def test_lr_decay_sets_each_epochs_learning_rate(engine):
    """lr(epoch) = lr · factor^⌊epoch / every_epochs⌋ on the main engine: epochs 1-2 at 0.004, epoch 3 at 0.002."""
    from pyro_vae.train import Trainer
    from pyro_vae.train.callbacks import Callback

    class Rates(Callback):
        def on_epoch_end(self, trainer, metrics):
            seen.append(engine_lr(trainer.engine))

    config = load_config(None, decay_overrides(engine))
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape)
    trainer = Trainer(model, data, config.train, seed=0)
    seen = []
    trainer.fit([Rates()])
    assert seen == [0.004, 0.004, 0.002]
    assert [config.train.lr_decay.lr(0.004, e) for e in range(5)] == [0.004, 0.004, 0.002, 0.002, 0.001]


@pytest.mark.parametrize("engine", ["torch", "svi"])
def test_lr_decay_resumes_on_schedule(tmp_path, monkeypatch, engine, hook_step):
    """Stopped mid-epoch 2 and resumed: the same metrics and weights as the uninterrupted run, bit for bit."""
    from pyro_vae import resume
    from pyro_vae.run import Run
    from pyro_vae.train.signals import Interrupted

    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    config = decay_overrides(engine, "train.lr_decay.every_epochs=1")
    reference = train(load_config(None, config), tmp_path / "ref")
    hook_step(9 + 4, lambda engine_, loss: os.kill(os.getpid(), signal.SIGINT) or loss)  # 9 steps per epoch
    with pytest.raises(Interrupted):
        train(load_config(None, config), tmp_path / "run")
    monkeypatch.undo()
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    resumed = resume(tmp_path / "run")
    assert [(r["step"], r["train_elbo"], r["test_elbo"]) for r in resumed.history] == \
        [(r["step"], r["train_elbo"], r["test_elbo"]) for r in reference.history]
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_lr_decay_bad_factor_is_one_line(tmp_path, capsys):
    from pyro_vae.cli import main

    assert main(["train", *tiny_overrides("train.lr_decay.factor=1.5"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.lr_decay.factor" in err and "(0, 1]" in err
