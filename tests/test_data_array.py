"""data.type: array: .npy/.npz readers, labels and covariates, standardisation, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae import load_config, load_run, train
from pyro_vae.cli import main
from pyro_vae.data import RowData, load_data
from pyro_vae.errors import DataError

TINY = ["train.epochs=1", "train.progress=false", "model.network.hidden_dims=[16]", "model.latent_dim=2",
        "train.eval_samples=2", "model.likelihood.type=gaussian"]


def config(path, *extra):
    return load_config(None, ["data.type=array", f"data.path={path}", *extra])


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(100, 4)).astype(np.float32)
    labels = np.arange(100) % 3
    cov = rng.normal(size=(100, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "cov.npy", cov)
    np.savez(tmp_path / "data.npz", cells=x, kind=labels, batch=cov)
    return tmp_path, x, labels, cov


def test_npy_with_labels_beside_it(arrays):
    root, x, labels, _ = arrays
    data = load_data(config(root / "x.npy", "data.label_key=labels.npy").data, 0)
    assert isinstance(data, RowData) and data.in_memory and data.shape == (4,)
    assert (data.num_train, data.num_test, data.num_classes, data.covariate_dim) == (90, 10, 3, 0)
    assert data.test_y.dtype == torch.long and data.test_y.shape == (10,)
    # every datapoint is kept once, with its own label
    rows = torch.cat([data.train_x, data.test_x])
    order = np.lexsort(rows.numpy().T)
    assert np.allclose(rows.numpy()[order], x[np.lexsort(x.T)])
    match = {tuple(r): l for r, l in zip(x.round(4).tolist(), labels)}
    assert all(match[tuple(r)] == int(l) for r, l in zip(data.test_x.numpy().round(4).tolist(), data.test_y))


def test_npz_keys_labels_and_covariates(arrays):
    root, x, labels, cov = arrays
    data = load_data(config(root / "data.npz", "data.x_key=cells", "data.label_key=kind",
                            "data.covariate_key=batch").data, 0)
    assert data.covariate_dim == 2 and data.num_classes == 3
    xb, yb = next(data.batches("train", 16))
    assert xb.shape == (16, 4) and yb.shape == (16, 2) and yb.dtype == torch.float32  # y = covariates
    assert data.labels("test").shape == (10,)  # the labels stay for pictures


def test_standardize_uses_the_training_split_and_is_undone_in_samples(arrays, tmp_path):
    root, x, _, _ = arrays
    cfg = config(root / "x.npy", "data.standardize=true", *TINY)
    data = load_data(cfg.data, 0)
    assert torch.allclose(data.train_x.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(data.train_x.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    run = train(cfg, tmp_path / "run")
    for name in ("latent.png", "reconstruction_scatter.png", "sample_histograms.png", "elbo.png"):
        assert (tmp_path / "run" / name).is_file(), name
    loaded = load_run(tmp_path / "run")  # without the data: the stats come from the checkpoint
    assert torch.equal(loaded.standardizer.mean, data.standardizer.mean)
    torch.manual_seed(1)
    raw = loaded.model.generate(5)
    torch.manual_seed(1)
    assert torch.allclose(loaded.sample(5), raw * data.standardizer.std + data.standardizer.mean)
    assert run.standardizer is not None


@pytest.mark.parametrize("extra, phrase", [
    (["data.x_key=nope"], "no array 'nope' (data.x_key); the archive holds: cells, kind, batch"),
    (["data.x_key=cells", "data.label_key=missing"], "no array 'missing' (data.label_key)"),
])
def test_wrong_npz_key_lists_the_keys(arrays, extra, phrase):
    root = arrays[0]
    with pytest.raises(DataError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        load_data(config(root / "data.npz", *extra).data, 0)


def test_bad_arrays(tmp_path):
    x = np.ones((20, 3))
    x[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(DataError, match="row 7 holds NaN or inf"):
        load_data(config(tmp_path / "nan.npy").data, 0)
    np.save(tmp_path / "flat.npy", np.ones(20))
    with pytest.raises(DataError, match=r"shape \(20,\); expected \(N, D\)"):
        load_data(config(tmp_path / "flat.npy").data, 0)
    np.save(tmp_path / "ok.npy", np.ones((20, 3)))
    np.save(tmp_path / "one.npy", np.zeros(20, dtype=int))
    with pytest.raises(DataError, match="one class"):
        load_data(config(tmp_path / "ok.npy", "data.label_key=one.npy").data, 0)
    np.save(tmp_path / "short.npy", np.arange(19) % 2)
    with pytest.raises(DataError, match=r"labels of shape \(19,\); expected \(20,\)"):
        load_data(config(tmp_path / "ok.npy", "data.label_key=short.npy").data, 0)
    np.save(tmp_path / "text.npy", np.array([["a", "b"]] * 20))
    with pytest.raises(DataError, match="holds <U1 values; expected numbers"):
        load_data(config(tmp_path / "text.npy").data, 0)
    with pytest.raises(DataError, match="does not exist"):
        load_data(config(tmp_path / "absent.npy").data, 0)
    with pytest.raises(DataError, match="data.path: not set"):
        load_data(load_config(None, ["data.type=array"]).data, 0)


def test_cli_samples_vectors_as_histograms_and_csv(arrays, tmp_path):
    root = arrays[0]
    train(config(root / "x.npy", "data.standardize=true", *TINY), tmp_path / "run")
    assert main(["sample", str(tmp_path / "run"), "-n", "7"]) == 0
    (csv,) = (tmp_path / "run").glob("samples-7-*.csv")
    samples = np.loadtxt(csv, delimiter=",")
    assert samples.shape == (7, 4) and csv.with_suffix(".png").is_file()
    assert abs(samples.mean() - 2.0) < 1.0  # the data's units (mean 2, sd 3); standardised ones are near 0


def test_cli_reports_bad_data_in_one_line_with_status_2(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", a=np.ones((20, 3)))
    code = main(["train", "--out", str(tmp_path / "run"), "data.type=array", f"data.path={tmp_path / 'd.npz'}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "no array 'x' (data.x_key); the archive holds: a" in err
    assert not (tmp_path / "run").exists()  # nothing written
