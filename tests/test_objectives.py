"""Objectives: IWAE, β weight, KL warm-up and free bits on top of Pyro's ELBOs, checked on the
linear-Gaussian VAE (exact posterior known) and against the plain Pyro classes."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from conftest import tiny_overrides
from test_evaluation import linear_data, linear_gaussian

from pyro_vae.config.run import load_config
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation import analytic_kl, linear_gaussian_log_marginal
from pyro_vae.infer.objectives import LatentWeightedMixin, LatentWeightedObjective, build_elbo, latent_weighted
from pyro_vae.registry import OBJECTIVES
from pyro_vae.run import train


def objective(name: str, **options):
    return build_elbo(OBJECTIVES.get(name).config_cls(**options), max_plate_nesting=1)


def loss(elbo, vae, x, seed: int = 0) -> torch.Tensor:
    pyro.set_rng_seed(seed)
    return elbo.differentiable_loss(vae.model, vae.guide, x)


def test_objectives_are_registered_and_validated():
    assert {"elbo", "meanfield", "iwae", "enum"} <= set(OBJECTIVES.names())
    assert isinstance(objective("iwae", num_particles=4), pyro.infer.RenyiELBO)
    assert objective("iwae").alpha == 0
    with pytest.raises(ConfigError, match="train.objective.beta"):
        load_config(None, ["train.objective.beta=-1"])
    with pytest.raises(ConfigError, match="train.objective.free_bits"):
        load_config(None, ["train.objective.free_bits=-0.5"])


@pytest.mark.parametrize("name, particles, tol", [("elbo", 3, 1e-2), ("iwae", 3, 1e-2), ("meanfield", 2000, 0.5)])
def test_every_objective_is_log_px_at_the_exact_posterior(name, particles, tol):
    """q(z|x) = p(z|x) makes every bound tight: −loss = Σ_n log p(x_n) (closed form). Every log-weight
    is then exactly log p(x); meanfield's split into E log p(x|z) (sampled) − KL (closed form) is not
    zero-variance, so it matches in expectation."""
    vae = linear_gaussian()
    x = linear_data(vae, 32).test_x
    elbo = objective(name, num_particles=particles)
    pyro.set_rng_seed(0)
    value = -elbo.loss(vae.model, vae.guide, x)
    assert value == pytest.approx(float(linear_gaussian_log_marginal(vae, x).sum()), abs=tol)


def test_iwae_objective_tightens_with_more_particles():
    vae = linear_gaussian(shift=0.4, widen=1.6)
    x = linear_data(vae, 64).test_x
    exact = float(linear_gaussian_log_marginal(vae, x).sum())
    pyro.set_rng_seed(0)
    values = [-sum(objective("iwae", num_particles=k).loss(vae.model, vae.guide, x) for _ in range(20)) / 20
              for k in (1, 10, 200)]
    assert values[0] < values[1] < values[2] < exact + 1.0  # ELBO = IWAE_1 ≤ IWAE_10 ≤ IWAE_200 ≤ log p(x)
    assert exact - values[2] < 0.25 * (exact - values[0])


def test_trace_and_meanfield_elbo_agree_in_expectation():
    vae = linear_gaussian(exact_posterior=False, widen=0.7)
    x = linear_data(vae, 16).test_x
    mc = -objective("elbo", num_particles=5000).loss(vae.model, vae.guide, x)
    closed = -objective("meanfield", num_particles=5000).loss(vae.model, vae.guide, x)
    assert mc == pytest.approx(closed, abs=0.05 * x.shape[0])


def test_beta_one_is_the_plain_elbo():
    vae = linear_gaussian(exact_posterior=False)
    x = linear_data(vae, 16).test_x
    for cls in (pyro.infer.Trace_ELBO, pyro.infer.TraceMeanField_ELBO):
        plain, weighted = cls(), latent_weighted(cls)().configure(beta=1.0, warmup_steps=0, free_bits=0.0)
        a, b = loss(plain, vae, x), loss(weighted, vae, x)
        assert torch.allclose(a, b)
        ga = torch.autograd.grad(a, list(vae.parameters()))
        gb = torch.autograd.grad(b, list(vae.parameters()))
        assert all(torch.allclose(u, v) for u, v in zip(ga, gb))
    # no wrapper unless needed: Pyro's own class (the speed layer, pyro_vae.fast, reproduces it)
    assert type(objective("elbo", beta=1.0)) is pyro.infer.Trace_ELBO
    assert type(objective("elbo", beta=1.0, fused=False)) is pyro.infer.Trace_ELBO


@pytest.mark.parametrize("name", [e.name for e in OBJECTIVES.entries() if issubclass(e.cls, LatentWeightedObjective)])
def test_beta_weights_the_latent_term(name):
    """−L_β = −E log p(x|z) + β·KL: with the same z, L_β − L_1 = (1 − β)·KL (closed form for meanfield)."""
    vae = linear_gaussian(exact_posterior=False)
    x = linear_data(vae, 16).test_x
    plain, beta = loss(objective(name), vae, x), loss(objective(name, beta=4.0), vae, x)
    if name == "meanfield":
        kl = analytic_kl(vae, x).sum()
    else:  # same seed, same z: the one-sample KL log q(z|x) − log p(z)
        pyro.set_rng_seed(0)
        from pyro_vae.infer.importance import log_weights

        lw = log_weights(vae.model, vae.guide, x, num_samples=1)
        kl = (lw.guide["z"] - lw.model["z"]).sum()
    assert float((beta - plain).detach()) == pytest.approx(3.0 * float(kl.detach()), rel=1e-4, abs=1e-3)


def test_kl_warmup_schedule():
    elbo = objective("elbo", beta=2.0, warmup_steps=4)
    assert isinstance(elbo, LatentWeightedMixin)
    weights = []
    for step in range(6):
        elbo.step = step
        weights.append(elbo.weight())
    assert weights == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_training_with_warmup_and_free_bits_follows_the_trainer_step(tmp_path):
    from pyro_vae.data import load_data
    from pyro_vae.models import build_model
    from pyro_vae.train import Trainer

    config = load_config(None, tiny_overrides("train.epochs=1", "train.objective.warmup_steps=5",
                                              "train.objective.free_bits=0.1"))
    data = load_data(config.data, config.seed)
    trainer = Trainer(build_model(config.model, data.shape, data.num_classes), data, config.train)
    trainer.fit()
    elbo = trainer.engine.elbo
    assert trainer.step > 5 and elbo.step == trainer.step and elbo.weight() == 1.0
    assert math.isfinite(trainer.history[-1].test_elbo)


def test_free_bits_replace_small_kls_by_the_floor():
    """meanfield: −L = −rec + Σ_d B·max(λ, KL̄_d), KL̄_d the batch mean of dim d's closed-form KL."""
    vae = linear_gaussian(exact_posterior=False)
    x = linear_data(vae, 16).test_x
    loc, scale = vae.encode(x)
    per_dim = pyro.distributions.kl.kl_divergence(torch.distributions.Normal(loc, scale),
                                                  torch.distributions.Normal(0.0, 1.0)).mean(0).detach()  # (D,)
    lam = float(per_dim.max()) + 0.5  # above every dim's KL: all dims sit on the floor
    plain, floored = loss(objective("meanfield"), vae, x), loss(objective("meanfield", free_bits=lam), vae, x)
    n = x.shape[0]
    expected = plain.detach() - n * per_dim.sum() + n * lam * per_dim.numel()
    assert float(floored.detach()) == pytest.approx(float(expected), rel=1e-5)
    # on the floor the KL no longer pulls on the encoder: its gradient is the reconstruction's alone
    bias = vae.encoder.head.logvar.bias
    g_floor = torch.autograd.grad(floored, bias)[0]
    g_plain = torch.autograd.grad(loss(objective("meanfield"), vae, x), bias)[0]
    g_kl = torch.autograd.grad(analytic_kl(vae, x).sum(), bias)[0]
    assert torch.allclose(g_floor, g_plain - g_kl, atol=1e-4)


def test_iwae_trains_through_svi(tmp_path):
    run = train(None, tmp_path / "iwae", tiny_overrides("train.epochs=1", "train.objective.type=iwae",
                                                        "train.objective.num_particles=3"))
    assert math.isfinite(run.history[-1]["train_elbo"]) and run.history[-1]["test_elbo"] < 0
