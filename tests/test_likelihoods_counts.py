"""Count likelihoods: Poisson and negative binomial log p(x|z) against scipy's closed forms, θ modes, means,
data validation, and a tiny VAE trained on counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch.nn.functional import softplus

from pyro_vae.config.schema import from_dict
from pyro_vae.errors import DataError
from pyro_vae.likelihoods import LIKELIHOODS

SHAPE = (5,)


def build(name: str, **options):
    return LIKELIHOODS.build(from_dict(LIKELIHOODS.get(name).config_cls, {"type": name, **options}), SHAPE)


def counts(n=4):
    return torch.poisson(torch.full((n, *SHAPE), 3.0))


def test_poisson_log_prob_matches_scipy():
    lik = build("poisson")
    p, x = torch.randn(4, 1, *SHAPE), counts()
    rate = p[:, 0].exp()
    expected = stats.poisson.logpmf(x.numpy(), rate.numpy()).sum(-1)
    assert np.allclose(lik.distribution(p).log_prob(x).numpy(), expected, atol=1e-4)
    assert torch.allclose(lik.mean(p), rate)


@pytest.mark.parametrize("learn", ["shared", "per_dim", "decoder"])
def test_negative_binomial_log_prob_matches_scipy(learn):
    lik = build("negative_binomial", theta=2.5, learn=learn)
    p, x = torch.randn(4, lik.num_params, *SHAPE), counts()
    assert lik.num_params == (2 if learn == "decoder" else 1)
    assert lik.rho.numel() == {"shared": 1, "per_dim": 5, "decoder": 1}[learn]  # decoder: a shared offset
    mu = p[:, 0].exp()
    theta = lik.theta(p).expand_as(mu)
    if learn != "decoder":
        assert torch.allclose(theta, torch.tensor(2.5), atol=1e-5)  # θ starts at config.theta
    else:
        assert torch.allclose(theta, softplus(p[:, 1] + lik.rho) + 1e-6, atol=1e-6)
    # scipy's nbinom(n = θ, p = θ/(θ+μ)) is the NB with mean μ and Var μ + μ²/θ
    t, m = theta.detach().double().numpy(), mu.double().numpy()
    expected = stats.nbinom.logpmf(x.numpy(), t, t / (t + m)).sum(-1)
    assert np.allclose(lik.distribution(p).log_prob(x).detach().numpy(), expected, atol=1e-4)
    assert torch.allclose(lik.mean(p), mu)


def test_negative_binomial_moments_and_gradients():
    lik = build("negative_binomial", theta=2.0, learn="shared")
    p = torch.full((1, 1, *SHAPE), float(np.log(4.0)))  # μ = 4
    d = lik.distribution(p).base_dist
    assert torch.allclose(d.mean, torch.tensor(4.0), atol=1e-5)
    assert torch.allclose(d.variance, torch.tensor(4.0 + 16.0 / 2.0), atol=1e-4)  # μ + μ²/θ
    d.log_prob(torch.full((1, *SHAPE), 7.0)).sum().backward()
    assert lik.rho.grad is not None and lik.rho.grad.abs() > 0


@pytest.mark.parametrize("name", ["poisson", "negative_binomial"])
@pytest.mark.parametrize("bad, phrase", [(-1.0, "non-negative integer counts"), (0.5, "not whole numbers"),
                                         (float("nan"), "NaN or Inf")])
def test_counts_are_validated(name, bad, phrase):
    x = counts()
    x[1, 2] = bad
    with pytest.raises(DataError, match=phrase):
        build(name).validate(x)
    build(name).validate(counts())  # real counts pass


@pytest.mark.parametrize("name", ["poisson", "negative_binomial"])
def test_a_vae_trains_on_counts(tmp_path, name):
    from pyro_vae import load_config, train

    rng = np.random.default_rng(0)
    np.save(tmp_path / "counts.npy", rng.poisson(3.0, size=(120, 6)).astype(np.int64))
    config = load_config(None, ["data.type=array", f"data.path={tmp_path / 'counts.npy'}",
                                f"model.likelihood.type={name}", "train.epochs=2", "train.progress=false",
                                "model.network.hidden_dims=[16]", "model.latent_dim=2", "train.eval_samples=2"])
    run = train(config, tmp_path / "run")
    elbos = [row["train_elbo"] for row in run.history]
    assert all(np.isfinite(elbos)) and elbos[-1] > elbos[0]
    samples = run.sample(3)
    assert samples.shape == (3, 6) and (samples >= 0).all()
