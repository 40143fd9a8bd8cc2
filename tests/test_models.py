"""The VAE as a Pyro program: sites, shapes, and the ELBO against closed forms."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pyro_vae import load_config
from pyro_vae.infer import log_weights
from pyro_vae.models import build_model

SHAPE = (1, 8, 8)


def make_vae(*overrides):
    config = load_config(None, ["model.latent_dim=3", "model.network.hidden_dims=[16]", *overrides])
    return build_model(config.model, SHAPE)


@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_sites_and_shapes(network):
    vae = make_vae(f"model.network={network}")
    x = torch.bernoulli(torch.full((5, *SHAPE), 0.3))
    guide_tr = poutine.trace(vae.guide).get_trace(x)
    model_tr = poutine.trace(poutine.replay(vae.model, trace=guide_tr)).get_trace(x)
    z_q, z_p, x_site = guide_tr.nodes["z"], model_tr.nodes["z"], model_tr.nodes["x"]
    assert z_q["value"].shape == (5, 3) and z_q["fn"].event_shape == (3,)
    assert z_p["fn"].event_shape == (3,) and z_p["fn"].batch_shape == (5,)
    assert x_site["is_observed"] and x_site["fn"].event_shape == SHAPE and x_site["fn"].batch_shape == (5,)
    assert [f.name for f in z_q["cond_indep_stack"]] == ["data"]
    sample_names = {n for n, s in model_tr.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)}
    assert sample_names == {"z", "x"}


def test_vectorized_particles_shapes():
    vae = make_vae("model.network=conv")
    x = torch.bernoulli(torch.full((4, *SHAPE), 0.5))
    lw = log_weights(vae.model, vae.guide, x, num_samples=7)
    assert lw.total.shape == (7, 4) and set(lw.model) == {"z", "x"}


def test_model_samples_without_data():
    vae = make_vae()
    x = vae.model(num_samples=6)
    assert x.shape == (6, *SHAPE) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert vae.generate(6).shape == (6, *SHAPE)


def test_reparameterized_guide_has_gradients():
    vae = make_vae()
    x = torch.bernoulli(torch.full((4, *SHAPE), 0.5))
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.encoder.parameters())


def test_closed_form_kl_matches_monte_carlo():
    # KL(N(μ, σ²) ‖ N(0, 1)) = ½ Σ (σ² + μ² − 1 − log σ²)
    mu, sigma = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.7, 1.3, 0.2])
    closed = 0.5 * (sigma ** 2 + mu ** 2 - 1 - torch.log(sigma ** 2)).sum()
    q, p = dist.Normal(mu, sigma).to_event(1), dist.Normal(torch.zeros(3), torch.ones(3)).to_event(1)
    assert torch.allclose(torch.distributions.kl_divergence(q, p), closed)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean()
    assert mc.item() == pytest.approx(closed.item(), abs=0.02)


def test_trace_and_meanfield_elbo_agree_in_expectation():
    vae = make_vae()
    x = torch.bernoulli(torch.full((8, *SHAPE), 0.4))
    with torch.no_grad():
        mc = Trace_ELBO(num_particles=4000, vectorize_particles=True, max_plate_nesting=1).loss(vae.model, vae.guide, x)
        mf = TraceMeanField_ELBO(num_particles=4000, vectorize_particles=True, max_plate_nesting=1).loss(
            vae.model, vae.guide, x)
    assert mc == pytest.approx(mf, rel=2e-3)


def test_elbo_is_a_lower_bound_of_iwae():
    vae = make_vae()
    x = torch.bernoulli(torch.full((8, *SHAPE), 0.4))
    lw = log_weights(vae.model, vae.guide, x, num_samples=500).total
    elbo, iwae = lw.mean(0), torch.logsumexp(lw, 0) - math.log(500)
    assert (elbo <= iwae + 1e-5).all()


def test_log_weights_match_direct_computation():
    vae = make_vae("model.likelihood=gaussian", "model.likelihood.sigma=0.5")
    x = torch.rand(3, *SHAPE)
    pyro.set_rng_seed(1)
    lw = log_weights(vae.model, vae.guide, x, num_samples=1)
    pyro.set_rng_seed(1)
    loc, scale = vae.encoder(x)
    z = dist.Normal(loc, scale).rsample()
    mean = vae.decoder(z)[:, 0]
    direct = (dist.Normal(mean, 0.5).log_prob(x).sum((1, 2, 3)) + dist.Normal(0.0, 1.0).log_prob(z).sum(-1)
              - dist.Normal(loc, scale).log_prob(z).sum(-1))
    assert torch.allclose(lw.total[0], direct.detach(), atol=1e-4)
