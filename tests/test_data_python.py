"""train(config, out, data=...): tensors, arrays, (train, test) pairs, dicts with covariates, torch Datasets;
the run folder, reloading with and without the data, resuming."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import TensorDataset

from pyro_vae import load_config, load_run, resume, train
from pyro_vae.errors import DataError

TINY = ["train.epochs=1", "train.progress=false", "model.network.hidden_dims=[16]", "model.latent_dim=2",
        "train.eval_samples=2", "train.batch_size=32", "model.likelihood={type: gaussian, learn: shared}"]


def cfg(*extra):
    return load_config(None, [*TINY, *extra])


def history(run):
    return [(r["step"], r["train_elbo"], r["test_elbo"]) for r in run.history]


@pytest.fixture
def x():
    return torch.randn(120, 5, generator=torch.Generator().manual_seed(0)) * 2 + 1


def test_a_tensor_end_to_end(tmp_path, x):
    run = train(cfg(), tmp_path / "run", data=x)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.pt", "best.pt", "config.yaml", "metrics.jsonl", "latent.png", "reconstruction_scatter.png",
            "sample_histograms.png", "elbo.png"} <= files
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["type"] == "python"
    assert run.data().num_test == 12 and np.isfinite(run.history[0]["test_elbo"])
    loaded = load_run(tmp_path / "run")  # weights and sampling need no data
    assert loaded.sample(4).shape == (4, 5)
    with pytest.raises(DataError, match="given from Python.*load_run\\(run_dir, data=...\\)"):
        loaded.evaluate(num_samples=2)
    report = load_run(tmp_path / "run", data=x).evaluate(num_samples=2)
    assert np.isfinite(report["test_elbo"]) and report["num_test"] == 12


def test_numpy_tensor_and_torch_dataset_give_the_same_run(tmp_path, x):
    a = train(cfg(), tmp_path / "a", data=x)
    b = train(cfg(), tmp_path / "b", data=x.numpy())
    c = train(cfg("data.type=python", "data.in_memory=true"), tmp_path / "c", data=TensorDataset(x))
    d = train(cfg("data.type=python", "data.in_memory=false", "data.num_workers=0"), tmp_path / "d",
              data=TensorDataset(x))
    assert history(a) == history(b) == history(c) == history(d)


def test_train_test_pairs_with_labels(tmp_path, x):
    labels = torch.arange(120) % 3
    run = train(cfg(), tmp_path / "run", data=((x[:100], labels[:100]), (x[100:], labels[100:])))
    data = run.data()
    assert (data.num_train, data.num_test, data.num_classes) == (100, 20, 3)
    assert torch.equal(data.test_x, x[100:]) and torch.equal(data.test_y, labels[100:])


def test_dict_with_covariates_and_standardize(tmp_path, x):
    cov = torch.randn(120, 2)
    data = {"train": x[:100], "test": x[100:], "covariates": cov[:100], "test_covariates": cov[100:]}
    run = train(cfg("data.type=python", "data.standardize=true"), tmp_path / "run", data=data)
    d = run.data()
    assert d.covariate_dim == 2 and torch.equal(d.test_y, cov[100:])
    xb, yb = next(d.batches("train", 8))
    assert yb.shape == (8, 2) and yb.dtype == torch.float32
    assert torch.allclose(run.to_data_units(d.test_x), x[100:], atol=1e-5)


def test_resume_takes_the_data_again(tmp_path, x):
    reference = train(cfg("train.epochs=2"), tmp_path / "ref", data=x)
    train(cfg(), tmp_path / "run", data=x)
    with pytest.raises(DataError, match="pass it again"):
        resume(tmp_path / "run", ["train.epochs=2"])
    assert history(resume(tmp_path / "run", ["train.epochs=2"], data=x)) == history(reference)


@pytest.mark.parametrize("data, phrase", [
    ({"train": np.ones((10, 2)), "labls": np.ones(10)}, "unknown key 'labls'; allowed keys: train, test"),
    ({"train": np.ones((10, 2)), "test": np.ones((5, 3))}, "test datapoints of shape (3,), train of (2,)"),
    ({"train": np.ones((10, 2)), "test": np.ones((5, 2)), "labels": np.arange(10) % 2}, "labels given for train only"),
    (np.array([["a", "b"]] * 10), "holds <U1 values; expected numbers"),
    ((np.ones((10, 2)), np.ones((5, 2)), np.ones((5, 2))), "a sequence of 3 items; expected (train, test)"),
])
def test_bad_python_data(tmp_path, data, phrase):
    with pytest.raises(DataError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        train(cfg(), tmp_path / "run", data=data)
    assert not (tmp_path / "run").exists()
