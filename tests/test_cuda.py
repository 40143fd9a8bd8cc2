"""The code paths that touch CUDA: the device choice, model and data moved to the GPU, checkpoints written from
it and loaded onto either device, resuming, evaluation and sampling there. Skipped without a CUDA device
(except the device choice's refusal, which needs none)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_overrides
from pyro_vae import load_config, load_run, resume, train
from pyro_vae.errors import TrainingError
from pyro_vae.train import resolve_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_requested_without_one_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(TrainingError, match="train.device: 'cuda' requested"):
        resolve_device("cuda")


@cuda
def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"


@pytest.fixture
def cuda_run(tmp_path):
    """A two-epoch digits run trained on the GPU."""
    return train(load_config(None, tiny_overrides("train.device=cuda")), tmp_path / "run")


@cuda
def test_training_on_cuda_keeps_model_and_data_there(cuda_run):
    assert cuda_run.device.type == "cuda" and cuda_run.data().train_x.device.type == "cuda"
    rows = [json.loads(line) for line in (cuda_run.path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["test_elbo"] < 0 for r in rows)
    payload = torch.load(cuda_run.path / "model.pt", weights_only=True, map_location="cpu")
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())  # saved device-free


@cuda
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_cuda_run_loads_on_either_device(cuda_run, device):
    loaded = load_run(cuda_run.path, device=device)
    assert loaded.device.type == device
    for (name, a), b in zip(cuda_run.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu()), name
    samples = loaded.sample(4)
    assert samples.device.type == device and samples.shape == (4, 1, 8, 8)
    report = loaded.evaluate(num_samples=2)
    assert report["test_elbo"] < 0 and report["test_log_likelihood"] >= report["test_elbo"] - 1.0


@cuda
def test_resume_on_cuda_continues_the_run(cuda_run):
    resumed = resume(cuda_run.path, ["train.epochs=3"])
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3] and resumed.device.type == "cuda"
    assert resumed.history[:2] == cuda_run.history


@cuda
def test_importance_weights_on_cuda(cuda_run):
    """The one-pass log-weights run on the GPU (random draws there) with the CPU's shapes, and are finite."""
    from pyro_vae.evaluation.loglik import ImportanceWeights

    model = cuda_run.model.eval()
    x, y = cuda_run.data().test_x[:8], cuda_run.data().test_y[:8]
    on_gpu, observed = ImportanceWeights(model)(x, y, 3)
    assert on_gpu.device.type == "cuda" and torch.isfinite(on_gpu).all() and (observed <= 0).all()
    cpu_model = load_run(cuda_run.path, device="cpu").model.eval()
    assert ImportanceWeights(cpu_model)(x.cpu(), y.cpu(), 3)[0].shape == on_gpu.shape == (3, 8)
