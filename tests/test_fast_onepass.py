"""One-pass ELBO (pyro_vae.fast.onepass, .kernels): the same loss and gradients as Pyro's own ELBO classes."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from conftest import tiny_model
from pyro_vae.errors import DataError
from pyro_vae.fast import FastLoss, compile_loss
from pyro_vae.fast.kernels import Constants, neg_log_prob_sum, rsample_scored
from pyro_vae.infer.objectives import build_elbo
from pyro_vae.likelihoods import pointwise_likelihoods
from pyro_vae.models import build_model
from pyro_vae.registry import LIKELIHOODS, MODELS, OBJECTIVES, PRIORS

SHAPE = (1, 6, 6)
PAIRS = ["elbo", "meanfield"]  # the objectives with a one-pass form (Trace_ELBO, TraceMeanField_ELBO)


def objective(name: str = "elbo", **options):
    return OBJECTIVES.get(name).config_cls(**options)


def tiny(model_type: str = "vae", **fields) -> nn.Module:
    pyro.clear_param_store()
    return tiny_model(model_type, SHAPE, 4, latent_dim=3, seed=0, **fields)


def data(n: int = 5):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, *SHAPE), generator=g).float() / 255  # 8-bit grey levels in [0, 1]
    return x, torch.randint(0, 4, (n,), generator=g)


def loss_and_grads(loss_fn, model: nn.Module, x, y, seed: int = 3):
    pyro.set_rng_seed(seed)
    with pyro.validation_enabled(False):
        loss = loss_fn(x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss, grads


def one_pass(model, name: str = "elbo", **options) -> FastLoss:
    """The speed layer's loss without replay (the one-pass program, eager), quiet."""
    return compile_loss(model, objective(name, **options), max_plate_nesting=1, replay=False, notify=None)


def assert_same(model, x, y, name: str = "elbo", **options) -> FastLoss:
    """Loss and gradients of the one-pass path equal Pyro's own ELBO class (same objective config)."""
    fused = one_pass(model, name, **options)
    elbo = build_elbo(objective(name, **options), 1)
    a, ga = loss_and_grads(lambda x, y: elbo.differentiable_loss(model.model, model.guide, x, y), model, x, y)
    b, gb = loss_and_grads(fused.loss, model, x, y)
    assert b.item() == pytest.approx(a.item(), rel=1e-5, abs=1e-4)
    for u, v in zip(ga, gb):
        assert (u is None) == (v is None)
        if u is not None:
            assert torch.allclose(u, v, rtol=1e-4, atol=1e-5 * max(1.0, u.abs().max().item()))
    return fused


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("prior", [p for p in PRIORS.names() if p not in {"conditional", "flat"}])
def test_every_prior_same_loss_and_gradients(prior, name):
    model = tiny(prior={"type": prior})
    x, y = data()
    fused = assert_same(model, x, y, name)
    assert fused.fused is True, fused.reason


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("likelihood", pointwise_likelihoods())
def test_every_likelihood_same_loss_and_gradients(likelihood, name):
    model = tiny(likelihood={"type": likelihood})
    grey, y = data()
    for x in (grey, grey * 2 - 1, (grey * 10).round()):  # [0, 1]; a likelihood on [-1, 1]; counts
        try:
            model.likelihood.validate(x)
            break
        except DataError:
            continue
    model.likelihood.validate(x)
    fused = assert_same(model, x, y, name)
    assert fused.fused is True, fused.reason


@pytest.mark.parametrize("model_type", [m for m in MODELS.names() if m not in ("vae", "gmvae", "m2")])  # gmvae, m2: enum only
def test_every_model_same_loss_and_gradients(model_type):
    """Conditional models, the deterministic baseline and the autoencoder family (Delta guides, factors)."""
    model = tiny(model_type)
    x, y = data()
    assert_same(model, x, y)


@pytest.mark.parametrize("vectorize", [True, False])
def test_particles_same_loss_and_gradients(vectorize):
    model = tiny()
    x, y = data()
    fused = assert_same(model, x, y, num_particles=4, vectorize_particles=vectorize)
    assert fused.fused is True


def test_same_random_numbers_as_pyro():
    """The one-pass guide draws the very z that Pyro's Normal.rsample draws under the same seed."""
    model = tiny()
    x, y = data()
    pyro.set_rng_seed(7)
    pyro_z = pyro.poutine.trace(model.guide).get_trace(x, y).nodes["z"]["value"]
    from pyro_vae.fast.onepass import GuideRun
    pyro.set_rng_seed(7)
    with GuideRun() as run:
        model.guide(x, y)
    assert torch.equal(run.sites["z"][1], pyro_z)


def test_subsampled_plate_scale_and_mask():
    """Plate subsampling scales each term by N/B; masked sites drop out; both as in Trace_ELBO."""
    w = nn.Parameter(torch.tensor([0.3, -0.2]))
    x = torch.randn(20, 2)
    keep = torch.rand(20) > 0.3

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = w

        def model(self, x, y=None):
            with pyro.plate("data", 20, subsample_size=6) as idx:
                z = pyro.sample("z", dist.Normal(self.w, 1.0).to_event(1))
                with pyro.poutine.mask(mask=keep[idx]):
                    pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=x[idx])

        def guide(self, x, y=None):
            with pyro.plate("data", 20, subsample_size=6):
                pyro.sample("z", dist.Normal(2 * self.w, 0.7).to_event(1))

    toy = Toy()
    for name in PAIRS:
        fused = assert_same(toy, x, None, name)
        assert fused.fused is True


def test_unsupported_programs_fall_back_to_pyro():
    """A latent site missing from the guide, or a guide site without rsample: Pyro's own ELBO does the work."""
    class ModelOnlyLatent(nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = nn.Parameter(torch.zeros(2))

        def model(self, x, y=None):
            u = pyro.sample("u", dist.Normal(0.0, 1.0))
            with pyro.plate("data", x.shape[0]):
                z = pyro.sample("z", dist.Normal(self.loc, 1.0).to_event(1))
                pyro.sample("x", dist.Normal(z + u, 1.0).to_event(1), obs=x)

        def guide(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", dist.Normal(self.loc + 1, 1.0).to_event(1))

    class DiscreteGuide(nn.Module):
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(torch.zeros(3))

        def model(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                k = pyro.sample("k", dist.Categorical(logits=torch.zeros(3)))
                pyro.sample("x", dist.Normal(k.float().unsqueeze(-1), 1.0).to_event(1), obs=x)

        def guide(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("k", dist.Categorical(logits=self.logits))

    x = torch.randn(4, 2)
    for program, site in ((ModelOnlyLatent(), "u"), (DiscreteGuide(), "k")):
        notes = []
        fused = compile_loss(program, objective(), max_plate_nesting=1, notify=notes.append)
        pyro.set_rng_seed(0)
        a = pyro.infer.Trace_ELBO(max_plate_nesting=1).differentiable_loss(program.model, program.guide, x)
        pyro.set_rng_seed(0)
        b = fused.loss(x)
        assert fused.fused is False and repr(site) in fused.reason
        assert fused.describe()["path"] == "pyro" and repr(site) in fused.describe()["reason"]
        assert len(notes) == 1 and notes[0].startswith("pyro-vae: fast path off (") and "Trace_ELBO" in notes[0]
        assert b.item() == pytest.approx(a.item(), rel=1e-6)  # the failed first try drew nothing
        fused.loss(x)
        assert len(notes) == 1  # said once


def test_validation_errors_keep_pyro_messages():
    """With validation on, the first call runs Pyro's checked pass: a guide site missing in the model is Pyro's error."""
    class Mismatch(nn.Module):
        def model(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("x", dist.Normal(0.0, 1.0).expand([2]).to_event(1), obs=x)

        def guide(self, x, y=None):
            with pyro.plate("data", x.shape[0]):
                pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    m = Mismatch()
    with pyro.validation_enabled(True), pytest.warns(UserWarning, match="Found non-auxiliary vars in guide"):
        compile_loss(m, objective(), max_plate_nesting=1, notify=None).loss(torch.zeros(3, 2))


def test_kernels_match_distributions():
    """rsample_scored / neg_log_prob_sum against rsample / log_prob, including broadcasting and masks."""
    loc, scale = torch.randn(4, 3), torch.rand(4, 3) + 0.5
    q = dist.Normal(loc, scale).to_event(1)
    torch.manual_seed(0)
    z_ref = q.rsample()
    torch.manual_seed(0)
    z, log_q = rsample_scored(q)
    assert torch.equal(z, z_ref)
    mask = torch.tensor([True, False, True, True])
    for s, m in ((1.0, None), (2.5, mask)):
        tensor, const = log_q(s, m)
        ref = (q.log_prob(z) * s * (m if m is not None else 1)).sum()
        assert (tensor + const).item() == pytest.approx(ref.item(), rel=1e-5)
    prior = nn.Module()
    prior.register_buffer("loc", torch.zeros(3))
    prior.register_buffer("scale", torch.ones(3))
    constants = Constants(prior)
    assert constants.zeros == ("loc",) and constants.ones == ("scale",)
    p = dist.Normal(prior.loc, prior.scale).to_event(1).expand([4])
    expected = -dist.Normal(0.0, 1.0).log_prob(z).sum().item()
    for known in (constants.current(), (frozenset(), frozenset())):  # the N(0, 1) kernel, and the general one
        tensor, const = neg_log_prob_sum(p, z, 1.0, None, constants=known)
        assert (tensor + const).item() == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        prior.loc.add_(0.5)  # written in place: read again, no longer a zero buffer
    assert constants.refresh() and constants.zeros == () and constants.ones == ("scale",)
    assert not constants.refresh()  # nothing changed since
    logits = torch.randn(2, 4, 5)  # particles × batch × pixels against data of batch × pixels
    xb = torch.bernoulli(torch.full((4, 5), 0.4))
    b = dist.Bernoulli(logits=logits).to_event(1)
    tensor, const = neg_log_prob_sum(b, xb, 1.0, None)
    assert tensor.item() + const == pytest.approx(-b.log_prob(xb).sum().item(), rel=1e-6)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("options", [{"beta": 0.5}, {"beta": 0.0}, {"beta": 2.0, "free_bits": 0.3},
                                     {"free_bits": 0.2, "num_particles": 3}])
def test_latent_weight_and_free_bits_on_the_one_pass_path(name, options):
    """β-VAE weight and free bits run on the one pass, with Pyro's weighted class's loss and gradients."""
    model = tiny()
    x, y = data()
    fused = assert_same(model, x, y, name, **options)
    assert fused.fused is True and fused.describe()["path"] == "one-pass", fused.describe()


def test_kl_warmup_follows_the_step_on_the_one_pass_path():
    model = tiny()
    x, y = data()
    fused = one_pass(model, "meanfield", beta=2.0, warmup_steps=4)
    elbo = build_elbo(objective("meanfield", beta=2.0, warmup_steps=4), 1)
    for step in (0, 2, 7):
        fused.set_step(step)
        elbo.step = step
        assert float(fused.latent_weight) == elbo.weight() == 2.0 * min(1.0, (step + 1) / 4)
        a, _ = loss_and_grads(lambda x, y: elbo.differentiable_loss(model.model, model.guide, x, y), model, x, y)
        b, _ = loss_and_grads(fused.loss, model, x, y)
        assert b.item() == pytest.approx(a.item(), rel=1e-5), step


def test_objective_without_a_one_pass_form_says_so_once():
    model = tiny()
    notes = []
    loss = compile_loss(model, objective("enum"), max_plate_nesting=1, notify=notes.append)
    assert loss.describe() == {"path": "pyro", "reason": "objective 'enum' (TraceEnum_ELBO) has no one-pass form",
                               "elbo": "TraceEnum_ELBO"}
    assert notes == ["pyro-vae: fast path off (objective 'enum' (TraceEnum_ELBO) has no one-pass form); "
                     "using Pyro's TraceEnum_ELBO"]
    quiet = compile_loss(model, objective("elbo", fused=False), max_plate_nesting=1, notify=notes.append)
    assert quiet.describe()["reason"] == "train.objective.fused=false" and len(notes) == 1  # asked for: no notice
