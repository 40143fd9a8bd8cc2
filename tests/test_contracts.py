"""The typed contracts: priors declare capabilities by type, one model body serves the model family."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from conftest import tiny_model
from pyro_vae.config.schema import from_dict
from pyro_vae.models.base import Clusterer, GenerativeModel, LatentModel
from pyro_vae.models.program import DecoderModel
from pyro_vae.nets.mlp import MLPEncoder
from pyro_vae.priors.base import ConditionalPrior, EncoderPrior, ImproperPrior, MixturePrior, Prior
from pyro_vae.registry import MODELS, PRIORS

SHAPE = (1, 8, 8)


def tiny(model_type: str, **fields) -> GenerativeModel:
    return tiny_model(model_type, SHAPE, 4, **fields)


@pytest.mark.parametrize("name, kinds", [
    ("normal", ()), ("laplace", ()), ("flow", ()), ("gmm", (MixturePrior,)), ("vamp", (MixturePrior, EncoderPrior)),
    ("flat", (ImproperPrior,)), ("conditional", (ConditionalPrior,)),
])
def test_priors_declare_capabilities_by_type(name, kinds):
    cls = PRIORS.get(name).cls
    assert issubclass(cls, Prior)
    for kind in (MixturePrior, EncoderPrior, ImproperPrior, ConditionalPrior):
        assert issubclass(cls, kind) == (kind in kinds), kind


def test_a_prior_is_a_module_from_the_condition_to_a_distribution():
    model = tiny("cvae")
    c = model.condition(None, torch.tensor([0, 3]))
    d = model.prior(c)
    assert d.event_shape == (2,) and d.batch_shape == (2,)
    assert torch.equal(d.mean, model.prior.distribution(c).mean)


SHARED_BODY = sorted(e.name for e in MODELS.entries() if e.cls.model is DecoderModel.model)


def test_the_shared_body_is_shared():
    assert {"vae", "cvae", "baseline", "autoencoder"} <= set(SHARED_BODY)


@pytest.mark.parametrize("model_type", SHARED_BODY)
def test_one_model_body(model_type):
    """Every registered model on DecoderModel.model (VAE, CVAE, baseline, the autoencoder family...): the sites
    stay z (not for the baseline), the penalty factor (contractive) and x."""
    model = tiny(model_type)
    x, y = torch.bernoulli(torch.full((3, *SHAPE), 0.4)), torch.tensor([0, 1, 2])
    guide = poutine.trace(model.guide).get_trace(x, y)
    trace = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x, y)
    names = [n for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)]
    expected = {"baseline": ["x"], "contractive": ["z", "contractive", "x"]}.get(model_type, ["z", "x"])
    assert names == expected
    assert trace.nodes["x"]["is_observed"]
    if isinstance(model.prior, ImproperPrior):
        return  # p(h) ∝ 1 has no samples to generate from
    generated = poutine.trace(model.model).get_trace(None, None, 5).nodes["x"]
    assert not generated["is_observed"] and generated["value"].shape == (5, *SHAPE)


def test_capabilities_of_the_models():
    vae, cvae, base, ae, gmvae = (tiny(t) for t in ["vae", "cvae", "baseline", "autoencoder", "gmvae"])
    assert all(isinstance(m, LatentModel) for m in (vae, cvae, ae, gmvae)) and not isinstance(base, LatentModel)
    assert isinstance(gmvae, Clusterer) and not isinstance(vae, Clusterer)
    assert (ae.point_estimate, vae.point_estimate) == (True, False)
    assert (cvae.label_conditional, base.label_conditional, vae.label_conditional) == (True, False, False)
    assert (cvae.cond_dim, vae.cond_dim, gmvae.cond_dim) == (4, 0, 0)


def test_gmvae_builds_its_encoder_once(monkeypatch):
    widths = []
    init = MLPEncoder.__init__

    def counting(self, config, data_shape, out_dim, cond_dim=0):
        widths.append(cond_dim)
        init(self, config, data_shape, out_dim, cond_dim)

    monkeypatch.setattr(MLPEncoder, "__init__", counting)
    model = tiny("gmvae", prior={"type": "gmm", "form": "enumerate", "num_components": 3})
    assert widths == [3]  # q(z|x,y) reads the one-hot y: built once, at that width
    assert model.encoder.body[0].in_features == 64 + 3


def test_enumerate_form_emits_y_before_z():
    model = tiny("vae", prior={"type": "gmm", "form": "enumerate", "num_components": 3})
    pyro.set_rng_seed(0)
    trace = poutine.trace(model.model).get_trace(None, None, 4)
    names = [n for n, s in trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)]
    assert names == ["y", "z", "x"] and model.enumerated_sites == ("y",)


def test_a_subclass_may_thread_its_own_condition_width():
    """VAE(..., cond_dim=K): encoder, decoder and p(z|c) are sized for a c the subclass supplies itself."""
    from pyro_vae.models.vae import VAE, VAEConfig

    config = from_dict(VAEConfig, {"latent_dim": 2, "network": {"type": "mlp", "hidden_dims": [8]}})
    model = VAE(config, SHAPE, 4, cond_dim=3)
    assert model.cond is None and model.cond_dim == 3
    assert model.encoder.body[0].in_features == 64 + 3 and model.decoder.body[0].in_features == 2 + 3


def test_a_prior_declares_its_own_sites():
    """The gmm prior's component y is a declared site (Prior.sites), z's distribution given it is
    distribution_given; with form marginal it has no sites and z is the mixture itself."""
    marginal = tiny("vae", prior={"type": "gmm", "form": "marginal", "num_components": 3}).prior
    enumerated = tiny("vae", prior={"type": "gmm", "form": "enumerate", "num_components": 3}).prior
    assert marginal.sites() == () and marginal.distribution_given({}).event_shape == (2,)
    (site,) = enumerated.sites()
    weights, locs, scales = enumerated.components()
    assert site.name == "y" and site.infer == {"enumerate": "parallel"}
    assert torch.allclose(site.distribution.probs, weights)
    y = torch.tensor([0, 2])
    d = enumerated.distribution_given({"y": y})
    assert torch.equal(d.mean, locs[y]) and torch.allclose(d.stddev, scales[y])
