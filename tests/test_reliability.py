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


def metrics(history):
    return [(r["epoch"], r["step"], r["train_elbo"], r["test_elbo"]) for r in history]


@pytest.mark.parametrize("engine", ["torch", "svi"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, engine, hook_step):
    config = overrides(f"train.engine={engine}")
    reference = train(load_config(None, config), tmp_path / "ref")

    def interrupt(engine_, loss):
        os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag: the step finishes, then the loop stops
        return loss

    hook_step(STEPS_PER_EPOCH + 4, interrupt)  # mid-epoch 2
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


def test_nonfinite_loss_names_epoch_step_and_causes_and_keeps_last_good(tmp_path, monkeypatch, capsys, hook_step):
    hook_step(STEPS_PER_EPOCH + 2, lambda engine, loss: float("nan"))
    code = main(["train", *overrides(), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1  # a training failure: one line, exit 1
    assert f"non-finite loss (nan) at epoch 2, step {STEPS_PER_EPOCH + 2}" in err
    assert "train.lr=0.001" in err and "data outside the likelihood's range" in err
    assert "model.pt keeps epoch 1" in err
    kept = load_run(tmp_path / "run")  # the last good checkpoint: epoch 1, finite weights
    assert len(kept.history) == 1
    assert all(torch.isfinite(p).all() for p in kept.model.parameters())


def test_nan_gradients_name_the_parameters(tmp_path, monkeypatch, hook_step):
    def poison(engine, loss):  # what a NaN gradient does to Adam: the updated weights become NaN
        with torch.no_grad():
            next(engine_model(engine).parameters()).fill_(float("nan"))
        return loss

    hook_step(3, poison)
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


def payload(**extra):
    """The smallest payload that passes the loader's structural checks."""
    return {"state_dict": {"w": torch.ones(3)}, "config": {}, "data_shape": [1], "num_classes": 0, "history": [],
            **extra}


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "model.pt"
    ckpt.save_checkpoint(payload(), path)

    def full(fd):  # the disk fills up while the new file is written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RunDirError, match="cannot write checkpoint \\(No space left on device\\); the previous"):
        ckpt.save_checkpoint(payload(state_dict={"w": torch.zeros(3)}), path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind


def test_rng_state_round_trips_through_weights_only(tmp_path):
    import random

    import numpy as np

    ckpt.save_checkpoint(payload(rng=ckpt.rng_state()), tmp_path / "rng.pt")
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
    for _ in range(3):  # an impatient user: more signals within milliseconds are held until the save is done
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # the first signal's exit status: the clean path, not death by signal
    assert "pyro-vae: stopped by SIGTERM" in err and f"pyro-vae train --resume {out}" in err
    assert "Traceback" not in err
    state = torch.load(out / "model.pt", weights_only=True)["trainer"]
    assert state["epoch"] >= 1
    run = resume(out, [f"train.epochs={state['epoch'] + 1}"])
    assert len(run.history) == state["epoch"] + 1


def test_first_signal_sets_a_flag_further_ones_are_held(capsys):
    from pyro_vae.train.signals import stop_on_signals

    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert flag and flag.name == "SIGTERM"
        with stop_on_signals() as inner:  # nested (the trainer's inside the run's): the same flag
            assert inner is flag
            for _ in range(5):  # a burst: held, never raised, the first signal still decides
                os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        assert flag.name == "SIGTERM" and flag.held == 5
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert capsys.readouterr().err.count("received again") == 1


# --- checkpoint integrity ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-epoch run (model.pt, model.prev.pt, best.pt) to copy and damage."""
    out = tmp_path_factory.mktemp("finished") / "run"
    torch.set_num_threads(1)
    assert main(["train", *tiny_overrides("data.limit=300", "train.epochs=2"), "--out", str(out)]) == 0
    return out


def copy_run(finished, tmp_path):
    import shutil

    return Path(shutil.copytree(finished, tmp_path / "copy"))


def one_line_error(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("pyro-vae: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_every_flipped_byte_is_detected(finished, tmp_path):
    """A flipped byte anywhere (weights, Adam moments, trainer state, zip structure, the digest) is refused."""
    import random

    raw = (finished / "model.pt").read_bytes()
    positions = random.Random(0).sample(range(len(raw)), 200) + [0, len(raw) // 2, len(raw) - 1, len(raw) - 70]
    path = tmp_path / "model.pt"
    for pos in positions:
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(damaged))
        with pytest.raises(RunDirError):
            ckpt.load_checkpoint(path)
    path.write_bytes(raw)
    assert ckpt.load_checkpoint(path)["trainer"]["epoch"] == 2  # control: the undamaged file loads
    assert torch.load(path, weights_only=True)["format"] == ckpt.FORMAT  # and is still a plain torch file


def test_a_corrupt_checkpoint_is_refused_on_every_path_and_names_the_intact_ones(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    raw = bytearray((run / "model.pt").read_bytes())
    raw[len(raw) // 3] ^= 0x10
    (run / "model.pt").write_bytes(bytes(raw))
    for argv in (["sample", str(run)], ["evaluate", str(run)], ["train", "--resume", str(run), "train.epochs=3"],
                 ["compare", str(run), str(finished), "-o", str(tmp_path / "c.png")]):
        err = one_line_error(capsys, argv)
        assert "SHA-256 digest mismatch" in err and "intact: model.prev.pt (epoch 1), best.pt (epoch" in err
    with pytest.raises(ckpt.CheckpointCorrupt):
        load_run(run)
    advice = err.split("to continue from one, ")[1].split()
    assert advice[0] == "cp"
    import shutil

    shutil.copy(advice[1], advice[2])  # follow the advice: model.prev.pt (epoch 1) is taken
    assert len(load_run(run).history) == 1
    assert len(resume(run, ["train.epochs=2"]).history) == 2


def damaged_payloads(finished):
    """(name, payload) pairs: well-formed files (valid digest) whose content is wrong."""
    good = torch.load(finished / "model.pt", weights_only=True)

    def variant(**changes):
        payload = {k: v for k, v in good.items() if k != "format"}
        trainer = dict(payload["trainer"])
        for key, value in changes.items():
            if key.startswith("trainer_"):
                trainer[key[8:]] = value
            else:
                payload[key] = value
        payload["trainer"] = trainer
        return payload

    nan_weights = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                   for k, v in good["state_dict"].items()}
    row = good["history"][0]
    return [
        ("history: 5", variant(history=5), "history: expected a list"),
        ("a row that is a string", variant(history=["x", row]), "history[0]: expected a mapping"),
        ("a row without test_elbo", variant(history=[{k: v for k, v in row.items() if k != "test_elbo"}, row]),
         "history[0].test_elbo"),
        ("epoch as text", variant(history=[{**row, "epoch": "1"}, good["history"][1]]), "history[0].epoch"),
        ("trainer.batch=10**9", variant(trainer_batch=10 ** 9), "trainer.batch"),
        ("trainer.epoch='x'", variant(trainer_epoch="x"), "trainer.epoch"),
        ("trainer.step=-1", variant(trainer_step=-1), "trainer.step"),
        ("all-NaN weights", variant(state_dict=nan_weights), "non-finite weights"),
        ("data_shape: []", variant(data_shape=[]), "data_shape"),
    ]


def test_malformed_payloads_are_refused_before_use(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    for name, payload, phrase in damaged_payloads(finished):
        (run / "model.pt").write_bytes(ckpt.encode(payload))  # a valid digest: the content is what is wrong
        commands = [["train", "--resume", str(run), "train.epochs=4"]]
        if name != "trainer.batch=10**9":  # (a position past the epoch's end matters to --resume only)
            commands += [["sample", str(run)], ["evaluate", str(run)]]
        for argv in commands:
            err = one_line_error(capsys, argv)
            assert phrase in err, (name, err)
    (run / "model.pt").write_text("just some text, not a checkpoint")  # torch's legacy loader: KeyError
    err = one_line_error(capsys, ["sample", str(run)])
    assert "corrupt, truncated or not a checkpoint" in err


def test_nothing_nonfinite_is_saved(tmp_path, monkeypatch, capsys, hook_step):
    path = tmp_path / "model.pt"
    ckpt.save_checkpoint(payload(), path)
    before = path.read_bytes()
    with pytest.raises(TrainingError, match="refused to save non-finite values \\(weights.w\\)"):
        ckpt.save_checkpoint(payload(state_dict={"w": torch.tensor([1.0, float("inf")])}), path)
    assert path.read_bytes() == before

    def diverge_and_interrupt(engine, loss):  # SIGINT in the first step of a run whose weights just blew up
        with torch.no_grad():
            next(engine_model(engine).parameters()).fill_(float("nan"))
        os.kill(os.getpid(), signal.SIGINT)
        return loss

    hook_step(1, diverge_and_interrupt)
    err = one_line_error(capsys, ["train", *overrides(), "--out", str(tmp_path / "run")], code=1)
    assert "stopped by SIGINT" in err and "not saved" in err and "non-finite weights" in err
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("engine, lr, phrase", [
    ("svi", "1e30", "non-finite loss (nan) at epoch 1"),   # pyro's SVI fails validating NaN parameters
    ("torch", "1", "training diverged at epoch 1"),       # huge but finite: ELBO far below the untrained one
])
def test_a_diverging_run_stops_naming_epoch_and_learning_rate(tmp_path, capsys, engine, lr, phrase):
    err = one_line_error(capsys, ["train", *overrides(f"train.engine={engine}", f"train.lr={lr}"),
                                  "--out", str(tmp_path / "run")], code=1)
    assert phrase in err and "a learning rate too high (train.lr=" in err


# --- run folders -------------------------------------------------------------------------------------------

def test_out_paths_that_cannot_hold_a_run(tmp_path, capsys):
    train_argv = ["train", *overrides("train.epochs=1", "data.limit=300")]
    (tmp_path / "file").write_text("user data")
    for out, phrase in [("", "--out: empty path"), (str(tmp_path / "file"), "is a file, not a folder"),
                        (str(tmp_path / "file" / "run"), "is a file, so no folder can be created below it"),
                        ("/dev/null", "is a file, not a folder"),
                        ("/proc/pyro-vae-run", "cannot create the folder")]:
        err = one_line_error(capsys, [*train_argv, "--out", out])
        assert phrase in err, err
    assert (tmp_path / "file").read_text() == "user data"


def test_out_refuses_foreign_folders_and_runs_unless_forced(tmp_path, capsys):
    train_argv = ["train", *overrides("train.epochs=1", "data.limit=300")]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    err = one_line_error(capsys, [*train_argv, "--out", str(mine)])
    assert "not empty and not a pyro-vae run (notes.txt)" in err and "--force" in err
    old = tmp_path / "old"  # a run's files without model.pt (e.g. the user deleted it): not overwritten
    old.mkdir()
    for name in ("config.yaml", "metrics.jsonl", "best.pt"):
        (old / name).write_text(name)
    err = one_line_error(capsys, [*train_argv, "--out", str(old)])
    assert "holds files of a run (best.pt, config.yaml, metrics.jsonl) but no model.pt" in err
    assert all((old / n).read_text() == n for n in ("config.yaml", "metrics.jsonl", "best.pt"))
    assert main([*train_argv, "--out", str(mine), "--force"]) == 0  # forced: written, the user's file stays
    assert (mine / "notes.txt").read_text() == "keep me" and (mine / "model.pt").is_file()
    err = one_line_error(capsys, [*train_argv, "--out", str(mine)])
    assert "already holds a run" in err and "--resume" in err and "--force" in err
    assert main([*train_argv, "--out", str(old), "--force"]) == 0
    assert len(load_run(old, which="best").history) == 1  # the old best.pt is gone, not mixed in


def test_a_locked_run_folder_refuses_a_second_training(finished, tmp_path, capsys):
    from pyro_vae.train.runfolder import LOCK, run_lock

    run = copy_run(finished, tmp_path)
    before = (run / "model.pt").read_bytes()
    with run_lock(run):  # a live holder (this process; flock is per open file)
        assert f'"pid": {os.getpid()}' in (run / LOCK).read_text()
        for argv in (["train", "--resume", str(run), "train.epochs=3"],
                     ["train", *overrides(), "--out", str(run), "--force"]):
            err = one_line_error(capsys, argv)
            assert f"in use by process {os.getpid()} on " in err
    assert (run / "model.pt").read_bytes() == before and not (run / LOCK).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / LOCK).write_text(f'{{"pid": {dead.stdout.strip()}, "host": "here", "since": "then"}}')  # stale
    (run / ".model.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # a write killed half-way
    assert len(resume(run, ["train.epochs=3"]).history) == 3  # the stale lock is taken over
    assert not (run / LOCK).exists() and not list(run.glob(".*.tmp"))


def test_resume_with_fewer_epochs_refuses_and_changes_nothing(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    files = {name: (run / name).read_bytes() for name in ("config.yaml", "model.pt", "metrics.jsonl")}
    err = one_line_error(capsys, ["train", "--resume", str(run), "train.epochs=1"])
    assert "train.epochs=1" in err and "already finished epoch 2" in err and "never shortens" in err
    assert {name: (run / name).read_bytes() for name in files} == files
    resume(run, ["train.epochs=3"])  # extending: config.yaml and model.pt agree afterwards
    assert load_config(run / "config.yaml") == load_run(run).config
    assert load_run(run).config.train.epochs == 3


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys, hook_step):
    import errno

    def disk_full(engine, loss):  # from epoch 2 on, every write fails
        def fail(*args):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fail)
        return loss

    hook_step(STEPS_PER_EPOCH + 1, disk_full)
    err = one_line_error(capsys, ["train", *overrides(), "--out", str(tmp_path / "run")])
    monkeypatch.undo()
    assert "model.pt: cannot write checkpoint (No space left on device); the previous model.pt is kept" in err
    assert len(load_run(tmp_path / "run").history) == 1


# --- signals -----------------------------------------------------------------------------------------------

def test_a_signal_during_the_final_evaluation_stops_cleanly(tmp_path, monkeypatch, capsys):
    evaluate, calls = trainer_module.elbo_and_iwae, []

    def interrupted_evaluation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the last epoch's held-out evaluation
            os.kill(os.getpid(), signal.SIGINT)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "elbo_and_iwae", interrupted_evaluation)
    assert main(["train", *overrides(), "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped by SIGINT after epoch 3" in err and "Traceback" not in err
    assert len(load_run(tmp_path / "run").history) == 3


def test_a_signal_during_start_up_is_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pyro_vae", "train", *overrides(), "--out", str(tmp_path / "r")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # importing torch and pyro
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.count("\n") == 1 and "stopped by SIGINT" in err, err
    assert not (tmp_path / "r").exists()
