"""The CVAE conditioned on continuous covariates: x = A c + noise, learned back from a short training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae import DataError, load_config, load_run, train
from pyro_vae.cli import main
from pyro_vae.errors import ConfigError
from pyro_vae.models import build_model

A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0], [-0.5, 0.5]], dtype=np.float32)  # x = A c + 0.1 ε
# σ starts at the noise level 0.1 (these 300 steps test the covariates, not how fast σ is learned)
TRAIN = ["model.latent_dim=2", "model.network.hidden_dims=[32]", "model.prior.hidden_dims=[16]",
         "model.likelihood=gaussian", "model.likelihood.learn=shared", "model.likelihood.init_sigma=0.1",
         "train.batch_size=64", "train.lr=3e-3",
         "train.progress=false", "train.eval_samples=2"]


def _write(folder, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n, A.shape[1])).astype(np.float32)
    x = c @ A.T + 0.1 * rng.standard_normal((n, A.shape[0])).astype(np.float32)
    np.savez(folder / "linear.npz", x=x, c=c)
    return folder / "linear.npz"


def _config(path, *extra):
    return load_config(None, ["data.type=array", f"data.path={path}", "data.covariate_key=c", "model.type=cvae",
                              "model.condition=covariates", *TRAIN, *extra])


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """20 epochs (300 steps, ~3 s) on 900 points of x = A c + 0.1 ε, c ∈ R², x ∈ R⁴."""
    folder = tmp_path_factory.mktemp("covariates")
    return train(_config(_write(folder), "train.epochs=20"), folder / "run")


def test_samples_at_c_have_mean_a_c(linear_run):
    torch.manual_seed(0)
    for c in ([1.0, -0.5], [-1.0, 1.0], [0.0, 0.0], [0.5, 1.5]):
        mean = linear_run.sample(1000, condition=c).mean(0).numpy()
        assert np.abs(mean - A @ np.array(c, dtype=np.float32)).max() < 0.25, (c, mean)


def test_log_likelihood_is_close_to_the_true_one(linear_run):
    """Importance-sampled log p(x|c) against the exact log N(x; A c, 0.1² I) of the same test points."""
    data = linear_run.data()
    exact = torch.distributions.Normal(data.test_y @ torch.as_tensor(A).T, 0.1).log_prob(data.test_x).sum(-1).mean()
    report = linear_run.evaluate(num_samples=20)
    assert abs(report["test_log_likelihood"] - float(exact)) < 0.3, (report["test_log_likelihood"], float(exact))


def test_decoder_and_prior_respond_to_c(linear_run):
    model = linear_run.model
    c1, c2 = torch.tensor([[1.0, -0.5]]), torch.tensor([[-1.0, 1.0]])
    z = torch.randn(200, 2)
    # at fixed z the decoder moves x along A(c1 − c2) (the rest of the shift comes through p(z|c): the split
    # between the two is not identifiable, their sum is tested above)
    shift = (model.mean(z, c1.expand(200, 2)) - model.mean(z, c2.expand(200, 2))).mean(0).detach()
    target = torch.as_tensor(A) @ (c1 - c2)[0]
    assert torch.cosine_similarity(shift, target, 0) > 0.9 and shift.norm() > 0.25 * target.norm()
    p1, p2 = model.prior.distribution(c1), model.prior.distribution(c2)
    assert (p1.mean - p2.mean).abs().max() > 0.05  # the learned p(z|c) is a function of c


def test_run_folder_keeps_the_covariate_width(linear_run):
    text = (linear_run.path / "config.yaml").read_text()
    assert "condition: covariates" in text and "covariate_dim: 2" in text
    run = load_run(linear_run.path)
    assert run.model.covariate_dim == 2 and run.sample(3, condition=[0.0, 1.0]).shape == (3, 4)
    assert run.sample(5).shape == (5, 4)  # without c: at the test split's covariates
    assert {"test_elbo", "test_iwae"} <= run.evaluate(num_samples=3).keys()


def test_cli_sample_condition(linear_run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(linear_run.path), "--condition", "1,-0.5", "-n", "50", "-o", str(out)]) == 0
    values = np.load(out)
    assert values.shape == (50, 4) and np.abs(values.mean(0) - A @ np.array([1.0, -0.5])).max() < 0.3
    assert main(["sample", str(linear_run.path), "--condition", "1,-0.5", "-n", "3", "-o", str(tmp_path / "s.csv")]) == 0
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 3
    capsys.readouterr()
    for bad, expected in (("1,2,3", "condition: got 3 values, but this run is conditioned on 2 covariates"),
                          ("1,x", "--condition: expected comma-separated numbers"),
                          ("1,nan", "--condition: expected finite numbers")):
        assert main(["sample", str(linear_run.path), "--condition", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err


def test_condition_on_a_run_without_covariates(tmp_path, capsys):
    from conftest import tiny_overrides

    out = tmp_path / "vae"
    train(None, out, tiny_overrides("train.epochs=1", "data.limit=200"))
    capsys.readouterr()
    assert main(["sample", str(out), "--condition", "1,2"]) == 2
    assert "not conditioned on covariates" in capsys.readouterr().err


def test_covariates_need_data_with_covariates(tmp_path):
    path = _write(tmp_path, n=50)
    with pytest.raises(ConfigError, match="model.condition: covariates needs a dataset with covariates"):
        train(load_config(None, ["data.type=array", f"data.path={path}", "model.type=cvae",
                                 "model.condition=covariates", *TRAIN]), tmp_path / "r")
    with pytest.raises(ConfigError, match="model.covariate_dim: 3, but the data has 2 covariates"):
        train(_config(path, "model.covariate_dim=3"), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_covariate_shapes_are_checked():
    config = load_config(None, ["model.type=cvae", "model.condition=covariates", "model.covariate_dim=2", *TRAIN])
    model = build_model(config.model, (4,))
    x = torch.randn(5, 4)
    with pytest.raises(DataError, match=r"expected covariates of shape \(B, 2\), got \(5, 3\)"):
        model.guide(x, torch.randn(5, 3))
    with pytest.raises(DataError, match="needs the covariates c of width 2"):
        model.generate(3)
    with pytest.raises(DataError, match="3 covariate rows for 5 datapoints"):
        model.guide(x, torch.randn(3, 2))
    assert model.generate(3, torch.randn(3, 2)).shape == (3, 4)


def test_baseline_regresses_on_covariates(tmp_path):
    """The deterministic baseline x̂ = f(c) takes the same covariates (a regression reference)."""
    path = _write(tmp_path, n=300)
    config = load_config(None, ["data.type=array", f"data.path={path}", "data.covariate_key=c",
                                "model.type=baseline", "model.condition=covariates", "model.likelihood=gaussian",
                                "model.network.hidden_dims=[16]", "train.epochs=1", "train.progress=false"])
    run = train(config, tmp_path / "b")
    assert run.model.covariate_dim == 2 and run.sample(4, condition=[1.0, 0.0]).shape == (4, 4)


def test_covariates_from_python_data(tmp_path):
    """train(config, out, data={...covariates...}): the same CVAE from arrays in memory; sampling after
    load_run needs no data."""
    rng = np.random.default_rng(1)
    c = rng.standard_normal((300, 2)).astype(np.float32)
    x = c @ A.T + 0.1 * rng.standard_normal((300, 4)).astype(np.float32)
    config = load_config(None, ["model.type=cvae", "model.condition=covariates", "train.epochs=1", *TRAIN])
    train(config, tmp_path / "py", data={"train": x, "covariates": c})
    run = load_run(tmp_path / "py")
    assert run.config.model.covariate_dim == 2 and run.sample(3, condition=[1.0, 2.0]).shape == (3, 4)
