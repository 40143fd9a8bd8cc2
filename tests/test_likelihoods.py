"""Likelihoods: log p(x|z) against direct formulas, σ modes of the Gaussian, normalization, data validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import softplus

from pyro_vae.config.schema import from_dict
from pyro_vae.errors import DataError
from pyro_vae.likelihoods import LIKELIHOODS
from pyro_vae.likelihoods.categorical import LevelCategorical
from pyro_vae.likelihoods.discretized_logistic import DiscretizedLogistic

SHAPE = (1, 2, 3)


def build(name: str, **options):
    return LIKELIHOODS.build(from_dict(LIKELIHOODS.get(name).config_cls, {"type": name, **options}), SHAPE)


def params(likelihood, n=4):
    return torch.randn(n, likelihood.num_params, *SHAPE)


def test_bernoulli_log_prob_and_soft_targets():
    lik = build("bernoulli")
    p, x = params(lik), torch.rand(4, *SHAPE)
    logits = p[:, 0]
    manual = (x * logits - softplus(logits)).flatten(1).sum(-1)
    assert torch.allclose(lik.distribution(p).log_prob(x), manual, atol=1e-5)


@pytest.mark.parametrize("learn", ["fixed", "shared", "per_dim", "decoder"])
def test_gaussian_sigma_modes(learn):
    lik = build("gaussian", sigma=0.3, init_sigma=0.4, learn=learn)
    p, x = params(lik), torch.rand(4, *SHAPE)
    sigma = lik.scale(p)
    expected = {"fixed": 0, "shared": 1, "per_dim": 6, "decoder": 0}[learn]
    assert sum(q.numel() for q in lik.parameters()) == expected
    assert lik.num_params == (2 if learn == "decoder" else 1)
    if learn != "decoder":  # a fixed σ is config.sigma; a learned one starts at config.init_sigma
        assert torch.allclose(sigma, torch.tensor(0.3 if learn == "fixed" else 0.4), atol=1e-5)
    else:  # σ = min_sigma + softplus(ρ₀ + decoder output)
        assert sigma.shape == (4, *SHAPE) and torch.allclose(sigma, 1e-3 + softplus(p[:, 1] + lik.rho), atol=1e-6)
    loc = p[:, 0]
    sigma = sigma.expand_as(loc)
    manual = (-0.5 * ((x - loc) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)).flatten(1).sum(-1)
    assert torch.allclose(lik.distribution(p).log_prob(x), manual, atol=1e-4)


def test_a_learned_sigma_starts_at_one_the_spread_of_standardized_data():
    assert torch.allclose(build("gaussian", learn="shared").scale(torch.zeros(1)), torch.tensor(1.0), atol=1e-5)


def test_gaussian_learned_sigma_gets_gradients():
    lik = build("gaussian", learn="per_dim")
    lik.distribution(params(lik)).log_prob(torch.rand(4, *SHAPE)).sum().backward()
    assert lik.rho.grad is not None and lik.rho.grad.abs().sum() > 0


def test_laplace_log_prob():
    lik = build("laplace", sigma=0.2)
    p, x = params(lik), torch.rand(4, *SHAPE)
    manual = (-(x - p[:, 0]).abs() / 0.2 - math.log(2 * 0.2)).flatten(1).sum(-1)
    assert torch.allclose(lik.distribution(p).log_prob(x), manual, atol=1e-4)


def test_continuous_bernoulli_log_prob_and_normalizer():
    lik = build("continuous_bernoulli")
    p, x = params(lik), torch.rand(4, *SHAPE)
    lam = torch.sigmoid(p[:, 0])
    log_c = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))  # C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ)
    manual = (x * lam.log() + (1 - x) * (1 - lam).log() + log_c).flatten(1).sum(-1)
    assert torch.allclose(lik.distribution(p).log_prob(x), manual, atol=1e-3)
    grid = torch.linspace(0, 1, 20001)  # one pixel's density integrates to 1 over [0, 1]
    logits = torch.tensor([-3.0, 0.3, 2.0])
    density = torch.distributions.ContinuousBernoulli(logits=logits[:, None]).log_prob(grid).exp()
    assert torch.allclose(torch.trapezoid(density, grid), torch.ones(3), atol=1e-3)
    assert ((lik.mean(p) >= 0) & (lik.mean(p) <= 1)).all()


def test_discretized_logistic_is_a_distribution_over_the_levels():
    levels = torch.arange(256).float() / 255
    for loc, scale in [(0.51, 0.05), (0.0, 0.01), (0.98, 0.2), (0.31, 1e-3)]:
        d = DiscretizedLogistic(torch.tensor(loc), torch.tensor(scale))
        probs = d.log_prob(levels).exp()
        assert probs.sum().item() == pytest.approx(1.0, abs=2e-3)
        if scale <= 0.05:  # a narrow logistic puts its mode on loc's level (a wide one piles mass in the edge bins)
            assert int(probs.argmax()) == round(min(max(loc, 0), 1) * 255)
    # an interior bin against the logistic CDF difference
    d = DiscretizedLogistic(torch.tensor(0.4), torch.tensor(0.1))
    x = torch.tensor(100 / 255)
    cdf = lambda v: torch.sigmoid((v - 0.4) / 0.1)  # noqa: E731
    assert d.log_prob(x).exp().item() == pytest.approx((cdf(x + 0.5 / 255) - cdf(x - 0.5 / 255)).item(), rel=1e-4)
    samples = d.sample((1000,))
    assert torch.allclose(samples * 255, (samples * 255).round())


def test_discretized_logistic_likelihood_shapes_and_sampling():
    lik = build("discretized_logistic")
    p = params(lik)
    assert lik.num_params == 2
    d = lik.distribution(p)
    assert d.event_shape == SHAPE and d.batch_shape == (4,)
    x = d.sample()
    lik.validate(x)
    assert torch.isfinite(d.log_prob(x)).all()


def test_categorical_is_a_softmax_over_the_levels():
    logits = torch.randn(3, 2, 17)
    d = LevelCategorical(logits)
    levels = torch.arange(17).float() / 16
    log_p = torch.stack([d.log_prob(torch.full((3, 2), v)) for v in levels], -1)
    assert torch.allclose(log_p, torch.log_softmax(logits, -1), atol=1e-6)  # p(x = k/16) = softmax(ℓ)_k
    assert torch.allclose(d.mean, (torch.softmax(logits, -1) * levels).sum(-1), atol=1e-6)
    x = d.sample((500,))
    assert torch.equal(x * 16, (x * 16).round()) and x.min() >= 0 and x.max() <= 1
    two_particles = LevelCategorical(torch.randn(2, 3, 2, 17))  # particles × batch logits, batch-shaped data
    assert two_particles.log_prob(x[0]).shape == (2, 3, 2)


def test_categorical_likelihood_shapes():
    lik = build("categorical", levels=256)
    p = params(lik)
    assert lik.num_params == 256 and p.shape == (4, 256, *SHAPE)
    d = lik.distribution(p)
    assert d.event_shape == SHAPE and d.batch_shape == (4,)
    x = d.sample()
    lik.validate(x)
    logits = p.movedim(1, -1).log_softmax(-1)  # by hand: gather the data's level in each pixel's softmax
    by_hand = logits.gather(-1, (x * 255).round().long().unsqueeze(-1)).flatten(1).sum(-1)
    assert torch.allclose(d.log_prob(x), by_hand, atol=1e-4)


def test_categorical_trains_on_the_digit_levels(tmp_path):
    """The 0..16 digits with data.binarize: none are on the grid k/16: a 17-level categorical fits them."""
    from conftest import tiny_overrides

    from pyro_vae.run import train

    run = train(None, tmp_path / "run", tiny_overrides("data.binarize=none", "model.likelihood.type=categorical",
                                                        "model.likelihood.levels=17", "train.epochs=2"))
    first, last = run.history[0]["test_elbo"], run.history[-1]["test_elbo"]
    assert last > first + 10 and (tmp_path / "run" / "samples.png").exists()  # untrained: 64·log 17 = 181 nats
    with pytest.raises(DataError, match="categorical.*k/255"):  # 256 levels: the digits are off that grid
        train(None, tmp_path / "run2", tiny_overrides("data.binarize=none", "model.likelihood.type=categorical"))


@pytest.mark.parametrize("name,bad", [
    ("bernoulli", 2.0), ("continuous_bernoulli", -0.5), ("discretized_logistic", 1.5),
    ("discretized_logistic", 0.5 / 255), ("gaussian", float("nan")), ("laplace", float("inf")),
    ("categorical", -0.1), ("categorical", 0.5 / 255),
])
def test_validate_rejects_data_outside_the_support(name, bad):
    lik = build(name)
    x = torch.full((2, *SHAPE), 0.0)
    lik.validate(x)
    x[1, 0, 1, 2] = bad
    with pytest.raises(DataError, match=name.split("_")[0]):
        lik.validate(x)


def test_trainer_rejects_bad_data_before_the_first_step(tmp_path):
    from conftest import tiny_overrides

    from pyro_vae.run import train

    with pytest.raises(DataError, match="discretized_logistic"):  # digits with binarize: none, scale: false
        train(None, tmp_path / "run", tiny_overrides("data.binarize=none", "data.scale=false",
                                                     "model.likelihood.type=discretized_logistic"))
    assert not (tmp_path / "run" / "model.pt").exists()
