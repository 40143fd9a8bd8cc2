"""Reliability: atomic last/best checkpoints, exact resume after an interrupt, SIGINT/SIGTERM, NaN stops,
and loading that never executes code."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, tiny_overrides
from pyro_vae import RunDirError, TrainingError, load_config, load_run, resume, train
from pyro_vae.cli import main
from pyro_vae.errors import ConfigError
from pyro_vae.run import Run
from pyro_vae.train import checkpoint as ckpt
from pyro_vae.train import trainer as trainer_module
from pyro_vae.train.signals import Interrupted

STEPS_PER_EPOCH = 9  # data.limit=600 -> 540 training images, batches of 64


def overrides(*extra: str) -> list:
    return tiny_overrides("data.limit=600", "train.epochs=3", *extra)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    """One thread (the box is shared) and no pictures: these tests are about the loop and its files."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    yield
    torch.set_num_threads(threads)


def hook_step(monkeypatch, at_step: int, action) -> None:
    """Make ``action(engine, loss) -> loss`` run after optimizer step number ``at_step`` (1-based)."""
    build = trainer_module.build_engine

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


def metrics(history):
    return [(r["epoch"], r["step"], r["train_elbo"], r["test_elbo"]) for r in history]


@pytest.mark.parametrize("engine", ["torch", "svi"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, engine):
    config = overrides(f"train.engine={engine}")
    reference = train(load_config(None, config), tmp_path / "ref")

    def interrupt(engine_, loss):
        os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag: the step finishes, then the loop stops
        return loss

    hook_step(monkeypatch, STEPS_PER_EPOCH + 4, interrupt)  # mid-epoch 2
    with pytest.raises(Interrupted) as stopped:
        train(load_config(None, config), tmp_path / "run")
    assert stopped.value.exit_code == 130
    message = str(stopped.value)
    assert f"SIGINT at epoch 2, step {STEPS_PER_EPOCH + 4}" in message and "--resume" in message
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["trainer"]
    assert (state["epoch"], state["step"], state["batch"]) == (1, STEPS_PER_EPOCH + 4, 4)
    monkeypatch.undo()
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)

    resumed = resume(tmp_path / "run")
    assert metrics(resumed.history) == metrics(reference.history)  # bit-for-bit, not approximately
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_resume_at_epoch_boundary_and_extend(tmp_path):
    reference = train(load_config(None, overrides()), tmp_path / "ref")
    train(load_config(None, overrides("train.epochs=1")), tmp_path / "run")
    resumed = resume(tmp_path / "run", ["train.epochs=3"])
    assert metrics(resumed.history) == metrics(reference.history)
    assert load_run(tmp_path / "run").config.train.epochs == 3  # config.yaml and model.pt agree
    with pytest.raises(RunDirError, match="already finished its 3 epochs"):
        resume(tmp_path / "run")
    with pytest.raises(ConfigError, match="model.latent_dim: cannot be changed when resuming"):
        resume(tmp_path / "run", ["model.latent_dim=3"])


def test_last_and_best_checkpoints(tmp_path):
    run = train(load_config(None, overrides()), tmp_path / "run")
    best_epoch = max(run.history, key=lambda r: r["test_elbo"])["epoch"]
    last, best = load_run(tmp_path / "run"), load_run(tmp_path / "run", which="best")
    assert len(last.history) == 3 and len(best.history) == best_epoch
    assert "trainer" not in torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left


def test_nonfinite_loss_names_epoch_step_and_causes_and_keeps_last_good(tmp_path, monkeypatch, capsys):
    hook_step(monkeypatch, STEPS_PER_EPOCH + 2, lambda engine, loss: float("nan"))
    code = main(["train", *overrides(), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"non-finite loss (nan) at epoch 2, step {STEPS_PER_EPOCH + 2}" in err
    assert "train.lr=0.001" in err and "data outside the likelihood's range" in err
    assert "model.pt keeps epoch 1" in err
    kept = load_run(tmp_path / "run")  # the last good checkpoint: epoch 1, finite weights
    assert len(kept.history) == 1
    assert all(torch.isfinite(p).all() for p in kept.model.parameters())


def test_nan_gradients_name_the_parameters(tmp_path, monkeypatch):
    def poison(engine, loss):  # what a NaN gradient does to Adam: the updated weights become NaN
        with torch.no_grad():
            next(engine_model(engine).parameters()).fill_(float("nan"))
        return loss

    hook_step(monkeypatch, 3, poison)
    with pytest.raises(TrainingError) as error:
        train(load_config(None, overrides()), tmp_path / "run")
    message = str(error.value)
    assert "epoch 1, step 4" in message and "non-finite weights" in message
    assert "no epoch finished" in message and not (tmp_path / "run" / "model.pt").exists()


def engine_model(engine):
    return engine.model if hasattr(engine, "model") else engine.svi.model.__self__


def test_crafted_pickle_is_refused_without_running_code(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"format": ckpt.FORMAT, "state_dict": {}, "payload": Exploit()}, run_dir / "model.pt")
    with pytest.raises(RunDirError, match="refused to load: the file would run code.*posix.system"):
        ckpt.load_checkpoint(run_dir / "model.pt")
    assert main(["sample", str(run_dir)]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()  # nothing ran
    (run_dir / "model.pt").write_bytes(pickle.dumps(Exploit()))  # a bare (non-zip) pickle too
    with pytest.raises(RunDirError, match="refused by the weights-only loader"):
        load_run(run_dir)
    assert not marker.exists()
    pickle.loads((run_dir / "model.pt").read_bytes())  # control: the file really is an exploit
    assert marker.exists()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    ckpt.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def crash(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    assert torch.equal(ckpt.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind


def test_rng_state_round_trips_through_weights_only(tmp_path):
    import random

    import numpy as np

    ckpt.save_checkpoint({"rng": ckpt.rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (torch.rand(3), random.random(), np.random.rand())[1:] == expected[1:]
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])


def test_sigterm_saves_and_exits_then_resumes(tmp_path):
    """A real process killed by SIGTERM mid-training: exit 143, one clear line, a resumable checkpoint."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pyro_vae", "train", *overrides("train.epochs=10000"),
                             "--out", str(out)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM at epoch" in err and f"pyro-vae train --resume {out}" in err
    assert "Traceback" not in err
    state = torch.load(out / "model.pt", weights_only=True)["trainer"]
    assert state["epoch"] >= 1
    run = resume(out, [f"train.epochs={state['epoch'] + 1}"])
    assert len(run.history) == state["epoch"] + 1


def test_first_signal_sets_a_flag_second_stops_at_once():
    from pyro_vae.train.signals import stop_on_signals

    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert flag and flag.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
