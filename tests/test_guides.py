"""Guide families q(z|x): closed-form densities, the autoregressive structure of the IAF, every prior × guide
trains and evaluates, the fast engine keeps its fast path, checkpoints round-trip, and bad input is one line."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
import yaml
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam

from conftest import tiny_model, tiny_overrides
from pyro_vae import load_config, load_run, train
from pyro_vae.cli import main
from pyro_vae.config.schema import from_dict
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation.loglik import log_likelihood_batch
from pyro_vae.fast.loss import compile_loss
from pyro_vae.guides import GUIDES, build_guide
from pyro_vae.infer.objectives import OBJECTIVES
from pyro_vae.models import build_model
from pyro_vae.models.cvae import CVAEConfig
from pyro_vae.nets.mlp import MLPConfig, MLPEncoder
from pyro_vae.priors import PRIORS

D, SHAPE = 3, (1, 4, 4)
IAF = {"type": "iaf", "num_transforms": 2, "hidden_dims": [8], "context_dim": 4}
GUIDE_CONFIGS = {"gaussian": "gaussian", "full_covariance": "full_covariance", "iaf": IAF}


def guide_parts(name: str, options=None, latent_dim: int = D):
    """An MLP encoder, the guide family on it, and (μ, σ, h) for a batch of 5 random inputs."""
    encoder = MLPEncoder(MLPConfig(hidden_dims=[6]), SHAPE, latent_dim)
    config = from_dict(GUIDES.get(name).config_cls, {"type": name, **(options or {})})
    guide = build_guide(config, latent_dim, encoder)
    h = encoder.features(torch.rand(5, *SHAPE))
    loc, scale = encoder.head(h)
    return guide, loc, scale, h


def tiny_vae(guide, prior="normal", latent_dim=D):
    return tiny_model("vae", SHAPE, 10, latent_dim=latent_dim, prior=prior, guide=guide)


def binary_data(n=6):
    return (torch.rand(n, *SHAPE) > 0.5).float()


# ---- closed-form densities ----

def test_full_covariance_log_prob_matches_the_gaussian_formula():
    guide, loc, scale, h = guide_parts("full_covariance")
    with torch.no_grad():
        guide.off_diagonal.weight.normal_()
    q = guide.distribution(loc, scale, h)
    z = torch.randn(5, D)
    L = guide.scale_tril(scale, h).double()
    assert torch.equal(torch.diagonal(L, dim1=-2, dim2=-1), scale.double())
    assert torch.all(L.triu(1) == 0) and torch.any(L.tril(-1) != 0)
    sigma = L @ L.transpose(-1, -2)
    r = (z - loc).double().unsqueeze(-1)
    maha = (r.transpose(-1, -2) @ torch.linalg.inv(sigma) @ r).reshape(5)
    manual = -0.5 * maha - 0.5 * torch.logdet(sigma) - 0.5 * D * math.log(2 * math.pi)
    assert torch.allclose(q.log_prob(z).double(), manual, atol=1e-4)


def test_full_covariance_with_a_diagonal_L_is_the_gaussian_guide():
    full, loc, scale, h = guide_parts("full_covariance")  # the off-diagonal head starts at zero
    gaussian = build_guide(GUIDES.get("gaussian").config_cls(), D, MLPEncoder(MLPConfig(hidden_dims=[6]), SHAPE, D))
    z = torch.randn(4, 5, D)
    expected = gaussian.distribution(loc, scale, None).log_prob(z)
    assert torch.allclose(full.distribution(loc, scale, h).log_prob(z), expected, atol=1e-5)


def _one_step_by_hand(guide, z0, h):
    """z = m + exp(ℓ) ⊙ z0 with (m, ℓ) = ARNN(z0; c(x)) (ℓ clipped as Pyro does); returns z and Σ ℓ."""
    arnn = guide.transforms[0].nn
    m, log_s = arnn(z0, context=guide.context(h))
    log_s = log_s.clamp(-5.0, 3.0)
    return m + log_s.exp() * z0, log_s.sum(-1)


def test_iaf_log_prob_of_its_own_sample_is_base_minus_log_det():
    guide, loc, scale, h = guide_parts("iaf", {"num_transforms": 1, "hidden_dims": [8], "context_dim": 4})
    q = guide.distribution(loc, scale, h)
    pyro.set_rng_seed(3)
    z = q.rsample()
    pyro.set_rng_seed(3)
    z0 = q.base_dist.rsample()  # the same base draw
    z_hand, log_det = _one_step_by_hand(guide, z0, h)
    assert torch.allclose(z, z_hand, atol=1e-6)
    manual = dist.Normal(loc, scale).log_prob(z0).sum(-1) - log_det
    assert torch.allclose(q.log_prob(z), manual, atol=1e-5)


def test_iaf_scores_its_sample_from_the_cache_and_a_copy_by_exact_inversion():
    guide, loc, scale, h = guide_parts("iaf", IAF)
    calls = []
    for t in guide.transforms:
        t.nn.register_forward_hook(lambda *_: calls.append(1))
    q = guide.distribution(loc, scale, h)
    z = q.rsample()
    assert len(calls) == 2
    cached = q.log_prob(z)
    assert len(calls) == 2  # no network pass: every transform (the reversal too) cached its input
    inverted = q.log_prob(z.clone())  # a new tensor: inverted dim by dim
    assert len(calls) > 2
    assert torch.allclose(cached, inverted, atol=1e-4)


def test_iaf_transform_is_autoregressive():
    guide, loc, scale, h = guide_parts("iaf", {"num_transforms": 1, "hidden_dims": [8], "context_dim": 4})
    with torch.no_grad():
        for p in guide.parameters():
            p.normal_()
    z0 = torch.randn(D)
    jac = torch.autograd.functional.jacobian(lambda v: _one_step_by_hand(guide, v.unsqueeze(0), h[:1])[0][0], z0)
    assert torch.all(jac.triu(1) == 0)  # ∂z_i/∂z0_j = 0 for j > i
    _, log_det = _one_step_by_hand(guide, z0.unsqueeze(0), h[:1])
    assert torch.allclose(torch.diagonal(jac).log().sum(), log_det[0], atol=1e-5)


# ---- every prior × guide trains and evaluates ----

def _vae_priors():
    names = []
    for name in PRIORS.names():
        try:
            tiny_vae("gaussian", name)
        except ConfigError:
            continue  # a prior the plain VAE refuses (p(z|c) needs a condition)
        names.append(name)
    return names


@pytest.mark.parametrize("guide", sorted(GUIDE_CONFIGS))
@pytest.mark.parametrize("prior", _vae_priors())
def test_every_prior_and_guide_trains_and_evaluates(prior, guide):
    options = {"type": prior, "num_components": 2} if prior in ("gmm", "vamp") else prior
    model = tiny_vae(GUIDE_CONFIGS[guide], options)
    x = binary_data()
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), Trace_ELBO())
    losses = [svi.step(x) for _ in range(2)]
    assert all(math.isfinite(v) for v in losses)
    ll = log_likelihood_batch(model, x, num_samples=4)
    assert torch.isfinite(ll.log_px).all() and ll.log_px.shape == (6,)


@pytest.mark.parametrize("guide", sorted(GUIDE_CONFIGS))
def test_meanfield_objective_falls_back_to_a_sampled_kl(guide):
    model = tiny_vae(GUIDE_CONFIGS[guide])
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), TraceMeanField_ELBO())
    assert math.isfinite(svi.step(binary_data()))


@pytest.mark.parametrize("objective", ["elbo", "meanfield"])
@pytest.mark.parametrize("guide", sorted(GUIDE_CONFIGS))
def test_fast_engine_keeps_its_fast_path(guide, objective):
    model = tiny_vae(GUIDE_CONFIGS[guide])
    loss = compile_loss(model, from_dict(OBJECTIVES.get(objective).config_cls, {"type": objective}), notify=None)
    x = binary_data()
    for _ in range(2):
        value = loss.loss(x, None)
        value.backward()
        assert torch.isfinite(value)
    assert loss.describe()["path"] == "replay", loss.describe()


@pytest.mark.parametrize("guide", sorted(GUIDE_CONFIGS))
def test_one_pass_loss_and_gradients_are_pyros(guide):
    model = tiny_vae(GUIDE_CONFIGS[guide])
    x = binary_data()
    fast = compile_loss(model, from_dict(OBJECTIVES.get("elbo").config_cls, {"type": "elbo"}), replay=False,
                        notify=None)
    params = [p for p in model.parameters() if p.requires_grad]
    pyro.set_rng_seed(5)
    ours = fast.loss(x, None)
    assert fast.describe()["path"] == "one-pass"
    our_grads = torch.autograd.grad(ours, params, allow_unused=True)
    pyro.set_rng_seed(5)
    theirs = Trace_ELBO().differentiable_loss(model.model, model.guide, x)
    their_grads = torch.autograd.grad(theirs, params, allow_unused=True)
    assert torch.allclose(ours, theirs, rtol=1e-5)
    for a, b in zip(our_grads, their_grads):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, atol=1e-4))


def test_cvae_takes_the_guide_family_with_its_condition():
    config = from_dict(CVAEConfig, {"type": "cvae", "latent_dim": D, "network": {"type": "mlp", "hidden_dims": [8]},
                                       "guide": IAF})
    model = build_model(config, SHAPE, 4)
    x, y = binary_data(), torch.arange(6) % 4
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), Trace_ELBO())
    assert math.isfinite(svi.step(x, y))
    assert torch.isfinite(log_likelihood_batch(model, x, y, num_samples=3).log_px).all()


def test_a_non_gaussian_guide_has_no_gaussian_kl_split():
    assert tiny_vae("gaussian").gaussian_posterior
    assert not tiny_vae("full_covariance").gaussian_posterior and not tiny_vae(IAF).gaussian_posterior


# ---- run folders ----

def test_checkpoint_round_trip_with_an_iaf_guide(tmp_path):
    config = load_config(None, tiny_overrides("train.epochs=1", "model.guide=iaf", "model.guide.num_transforms=3",
                                              "model.guide.hidden_dims=[4]", "model.guide.context_dim=4"))
    assert config.model.guide.num_transforms == 3
    run = train(config, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["guide"] == {"type": "iaf", "num_transforms": 3, "hidden_dims": [4], "context_dim": 4}
    loaded = load_run(tmp_path / "run")
    assert loaded.config == run.config
    before, after = run.model.state_dict(), loaded.model.state_dict()
    assert set(before) == set(after) and any(k.startswith("guide_family.transforms.2.") for k in after)
    for k in before:
        assert torch.equal(before[k].cpu(), after[k]), k
    assert math.isfinite(loaded.evaluate(num_samples=2)["test_log_likelihood"])


def test_a_run_saved_before_guides_existed_loads_as_gaussian(tmp_path):
    run = train(load_config(None, tiny_overrides("train.epochs=1")), tmp_path / "run")
    assert not any(k.startswith("guide_family") for k in run.model.state_dict())  # the same names as before
    path = tmp_path / "run" / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    del saved["model"]["guide"]
    path.write_text(yaml.safe_dump(saved))
    loaded = load_run(tmp_path / "run")
    assert loaded.config.model.guide.type == "gaussian"
    for k, v in run.model.state_dict().items():
        assert torch.equal(v.cpu(), loaded.model.state_dict()[k]), k


# ---- bad input ----

@pytest.mark.parametrize("overrides, phrase", [
    (["model.guide=student"], "model.guide.type: unknown guide 'student'"),
    (["model.guide=iaf", "model.guide.num_transforms=0"], "model.guide.num_transforms"),
    (["model.guide=iaf", "model.guide.num_transforms=two"], "model.guide.num_transforms"),
    (["model.guide=iaf", "model.guide.hidden_dims=[1]"], "model.guide.hidden_dims"),
    (["model.guide.num_transforms=2"], "model.guide.num_transforms"),  # the gaussian guide has no such option
    (["model.type=gmvae", "train.objective=enum", "model.guide=iaf"], "model.guide.type: model.type gmvae"),
    (["model.type=m2", "model.guide=full_covariance"], "model.guide.type: model.type m2"),
    (["model.type=autoencoder", "model.guide=iaf"], "model.guide.type: model.type autoencoder"),
])
def test_bad_guide_config_is_one_line_naming_the_key(capsys, tmp_path, overrides, phrase):
    code = main(["train", *tiny_overrides(*overrides), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pyro-vae: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert phrase in err, err
    assert not (tmp_path / "run").exists()


def test_a_custom_encoder_without_features_takes_only_the_gaussian_guide():
    class Bare(torch.nn.Module):
        def forward(self, x, c=None):
            return torch.zeros(x.shape[0], D), torch.ones(x.shape[0], D)

    with pytest.raises(ConfigError, match="model.guide.type: iaf reads the encoder's features"):
        build_guide(from_dict(GUIDES.get("iaf").config_cls, {"type": "iaf"}), D, Bare())
    gaussian = build_guide(GUIDES.get("gaussian").config_cls(), D, Bare())
    assert gaussian(Bare(), torch.zeros(2, 1)).event_shape == (D,)
