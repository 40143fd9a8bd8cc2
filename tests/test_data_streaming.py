"""The DataLoader path (memory-mapped .npy, workers) gives the batches, losses and resumption of the in-memory path."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from pyro_vae import load_config, resume, train
from pyro_vae.data import RowData, load_data
from pyro_vae.errors import DataError
from pyro_vae.train.signals import Interrupted

TINY = ["train.epochs=2", "train.progress=false", "model.network.hidden_dims=[16]", "model.latent_dim=2",
        "train.eval_samples=2", "train.batch_size=32", "model.likelihood={type: gaussian, learn: shared}"]


@pytest.fixture
def npy(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32) * np.arange(1, 7) + 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(200) % 4)
    return tmp_path / "x.npy"


def config(path, in_memory, *extra):
    return load_config(None, ["data.type=array", f"data.path={path}", "data.label_key=y.npy",
                              f"data.in_memory={in_memory}", "data.num_workers=0", *extra])


def history(run):
    return [(r["step"], r["train_elbo"], r["test_elbo"]) for r in run.history]


def test_same_split_and_batches(npy):
    memory, stream = load_data(config(npy, "true").data, 3), load_data(config(npy, "false").data, 3)
    assert type(memory) is type(stream) is RowData and memory.in_memory and not stream.in_memory
    assert torch.equal(memory.test_x, stream.test_x) and torch.equal(memory.test_y, stream.test_y)
    for skip in (0, 2):
        a = list(memory.batches("train", 32, True, torch.Generator().manual_seed(5), skip))
        b = list(stream.batches("train", 32, True, torch.Generator().manual_seed(5), skip))
        assert len(a) == len(b) == 6 - skip
        assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))


@pytest.mark.parametrize("workers", [0, 2])
def test_same_losses_as_in_memory(npy, tmp_path, workers):
    extra = [*TINY, "data.standardize=true", f"data.num_workers={workers}"]
    reference = train(config(npy, "true", *extra), tmp_path / "memory")
    streamed = train(config(npy, "false", *extra), tmp_path / "stream")
    assert history(streamed) == history(reference)  # bit-for-bit on CPU
    assert torch.equal(streamed.standardizer.mean, reference.standardizer.mean)


def test_streamed_run_resumes_mid_epoch_exactly(npy, tmp_path, monkeypatch, hook_step):
    reference = train(config(npy, "false", *TINY), tmp_path / "ref")

    def interrupt(engine, loss):
        os.kill(os.getpid(), signal.SIGINT)
        return loss

    hook_step(8, interrupt)  # mid-epoch 2 (6 batches per epoch)
    with pytest.raises(Interrupted):
        train(config(npy, "false", *TINY), tmp_path / "run")
    monkeypatch.undo()
    assert history(resume(tmp_path / "run")) == history(reference)


def test_streaming_checks_values_before_training(tmp_path):
    x = np.ones((50, 3), dtype=np.float32)
    x[33, 2] = np.inf
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(50) % 2)
    with pytest.raises(DataError, match="row 33 holds NaN or inf"):
        train(config(tmp_path / "x.npy", "false", *TINY), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_npz_cannot_stream(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((10, 2)))
    with pytest.raises(DataError, match="needs a .npy file"):
        load_data(load_config(None, ["data.type=array", f"data.path={tmp_path / 'd.npz'}",
                                     "data.in_memory=false"]).data, 0)
