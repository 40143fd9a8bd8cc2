"""Training and run folders through the Python API."""

import json

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
