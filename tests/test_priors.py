"""Priors: each log_prob against a direct computation, the two GMM forms agree, every prior x likelihood trains."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.optim import Adam

from conftest import tiny_model
from pyro_vae.config.schema import from_dict
from pyro_vae.data import ImageData
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.evaluation.clustering import clustering_metrics, hungarian_accuracy, purity
from pyro_vae.fast import compile_loss
from pyro_vae.likelihoods import LIKELIHOODS, pointwise_likelihoods
from pyro_vae.models import build_model
from pyro_vae.models.vae import VAEConfig
from pyro_vae.priors import PRIORS
from pyro_vae.priors.vamp import gauge_penalty, mixture_moments
from pyro_vae.registry import OBJECTIVES

D = 3


def build_prior(name: str, **options):
    return PRIORS.build(from_dict(PRIORS.get(name).config_cls, {"type": name, **options}), D)


def tiny_vae(prior, likelihood="bernoulli", shape=(1, 4, 4), latent_dim=D):
    return tiny_model("vae", shape, 10, latent_dim=latent_dim, hidden_dims=[16], prior=prior, likelihood=likelihood)


def grid_data(n=12, shape=(1, 4, 4)):
    """Pixels on the 8-bit grid k/255 in [0, 1] (every likelihood's support)."""
    return torch.randint(0, 256, (n, *shape)).float() / 255


# ---- log_prob against direct computations ----

def test_gmm_log_prob_is_the_mixture_logsumexp():
    prior = build_prior("gmm", num_components=4)
    with torch.no_grad():
        prior.weight_logits.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    z = torch.randn(7, D)
    weights, locs, scales = prior.components()
    manual = torch.stack([
        weights[k].log() - 0.5 * (((z - locs[k]) / scales[k]) ** 2).sum(-1) - scales[k].log().sum()
        - 0.5 * D * math.log(2 * math.pi) for k in range(4)]).logsumexp(0)
    assert torch.allclose(prior.log_prob(z), manual, atol=1e-5)
    assert torch.allclose(weights.sum(), torch.tensor(1.0))
    resp = prior.responsibilities(z)
    assert resp.shape == (7, 4) and torch.allclose(resp.sum(-1), torch.ones(7), atol=1e-5)


def test_gmm_fixed_parts_are_buffers_not_parameters():
    learned = dict(build_prior("gmm", num_components=3).named_parameters())
    assert set(learned) == {"weight_logits", "locs", "scale_rho"}
    fixed = build_prior("gmm", num_components=3, learn_weights=False, learn_scales=False, init_scale=0.5)
    assert set(dict(fixed.named_parameters())) == {"locs"}
    weights, _, scales = fixed.components()
    assert torch.allclose(weights, torch.full((3,), 1 / 3)) and torch.allclose(scales, torch.full((3, D), 0.5),
                                                                              atol=1e-3)


def test_laplace_log_prob():
    prior = build_prior("laplace", scale=0.5)
    z = torch.randn(5, D)
    manual = (-z.abs() / 0.5 - math.log(2 * 0.5)).sum(-1)
    assert torch.allclose(prior.log_prob(z), manual, atol=1e-5)


def test_vamp_log_prob_is_the_mean_of_the_encoder_posteriors():
    model = tiny_vae({"type": "vamp", "num_components": 5})
    prior = model.prior
    assert "prior.pseudo_logits" in dict(model.named_parameters())
    assert not any(n.startswith("prior.") and "encoder" in n for n in model.state_dict())  # encoder held once
    z = torch.randn(6, D)
    locs, scales = model.encoder(torch.sigmoid(prior.pseudo_logits))
    manual = (dist.Normal(locs, scales).log_prob(z[:, None]).sum(-1) - math.log(5)).logsumexp(-1)
    assert torch.allclose(prior.log_prob(z), manual, atol=1e-5)


def test_vamp_hardtanh_pseudo_inputs():
    """pseudo_inputs: hardtanh is u_k = clamp(a_k, 0, 1), starting as a linear layer on one-hot inputs
    (a_k = w_k + b, w_k, b ~ U(±1/√K)): dark, varied images; the density is the same mixture of q(z|u_k)."""
    k = 4
    model = tiny_vae({"type": "vamp", "num_components": k, "pseudo_inputs": "hardtanh"})
    prior = model.prior
    a, u = prior.pseudo_logits, prior.pseudo_inputs()
    assert a.abs().max() <= 2 / math.sqrt(k) and torch.equal(u, a.clamp(0, 1))
    assert (u == 0).any() and (u > 0).any() and not torch.equal(u[0], u[1])
    z = torch.randn(6, D)
    locs, scales = model.encoder(u)
    manual = (dist.Normal(locs, scales).log_prob(z[:, None]).sum(-1) - math.log(k)).logsumexp(-1)
    assert torch.allclose(prior.log_prob(z), manual, atol=1e-5)


def test_vamp_gauge_penalty_is_the_hand_formula():
    """λ/2·(‖m‖² + Σ_d log² v_d), m = Σ_k π_k μ_k, v_d = Σ_k π_k (σ_kd² + μ_kd²) − m_d² (the mixture's moments)."""
    weights = torch.tensor([0.25, 0.75])
    locs = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    scales = torch.tensor([[0.5, 1.0], [2.0, 0.1]])
    m = [0.25 * 1.0 + 0.75 * 3.0, 0.25 * -2.0]
    v = [0.25 * (0.25 + 1.0) + 0.75 * (4.0 + 9.0) - m[0] ** 2, 0.25 * (1.0 + 4.0) + 0.75 * 0.01 - m[1] ** 2]
    hand = 0.5 * 3.0 * (m[0] ** 2 + m[1] ** 2 + math.log(v[0]) ** 2 + math.log(v[1]) ** 2)
    assert math.isclose(float(gauge_penalty(weights, locs, scales, 3.0)), hand, rel_tol=1e-5)
    assert float(gauge_penalty(torch.ones(1), torch.zeros(1, 2), torch.ones(1, 2), 1.0)) == 0.0  # N(0, I)


def gauge_map(model, a: torch.Tensor, c: torch.Tensor) -> None:
    """z ↦ a ⊙ z + c on the encoder's outputs (μ ↦ aμ + c, σ ↦ aσ), undone by the decoder's first linear layer."""
    head, first = model.encoder.head, model.decoder.body[0]
    with torch.no_grad():
        head.loc.weight.mul_(a[:, None])
        head.loc.bias.mul_(a).add_(c)
        head.logvar.bias.add_(2 * a.log())
        first.bias.sub_(first.weight @ (c / a))
        first.weight.div_(a)


def test_vamp_elbo_is_invariant_under_the_affine_gauge_and_the_penalty_pins_it():
    """log p(x|z) + log p(z) − log q(z|x) keeps its value, draw by draw, when the encoder's outputs move by
    z ↦ a ⊙ z + c (the VampPrior moves with them); the gauge term is 0 at the orbit's point with m = 0, v = 1."""
    torch.manual_seed(0)
    model = tiny_vae({"type": "vamp", "num_components": 5})
    x, eps = grid_data(6).bernoulli(), torch.randn(6, D)

    def log_weights() -> torch.Tensor:
        loc, scale = model.encode(x)
        z = loc + scale * eps
        q = dist.Normal(loc, scale).to_event(1).log_prob(z)
        return model.likelihood.distribution(model.decoder(z)).log_prob(x) + model.prior.log_prob(z) - q

    def moments():
        mean, var = mixture_moments(*model.prior.components())
        return mean, var.sqrt()

    a, c = torch.tensor([3.0, 0.2, 1.5]), torch.tensor([-4.0, 1.0, 0.5])
    with torch.no_grad():
        before, (mean, sd) = log_weights(), moments()
        assert float(model.prior.penalty()) > 0.01
        gauge_map(model, a, c)
        assert torch.allclose(log_weights(), before, atol=1e-3)
        moved_mean, moved_sd = moments()  # m ↦ a ⊙ m + c, √v ↦ a ⊙ √v
        assert torch.allclose(moved_mean, a * mean + c, atol=1e-4) and torch.allclose(moved_sd, a * sd, atol=1e-4)
        gauge_map(model, 1 / moved_sd, -moved_mean / moved_sd)  # the orbit's point with m = 0, v = 1
        assert torch.allclose(log_weights(), before, atol=1e-3)
        assert float(model.prior.penalty()) < 1e-8


def test_flow_gauge_term_pins_the_codes_moments():
    """λ/2·(‖m‖² + Σ_d log² v_d) of the batch's codes (every particle's): zero at mean 0 and unit variances, the
    closed form after z ↦ 2z + 1, None when off or for a single code."""
    torch.manual_seed(0)
    prior = PRIORS.get("flow").cls(from_dict(PRIORS.get("flow").config_cls, {"gauge": 0.5}), D)
    z = torch.randn(4, 25, D)
    codes = z.reshape(-1, D)
    z = (z - codes.mean(0)) / codes.std(0, unbiased=False)  # standardized over particles and batch together
    assert float(prior.penalty(z)) == pytest.approx(0.0, abs=1e-10)
    assert float(prior.penalty(2 * z + 1)) == pytest.approx(0.5 * 0.5 * (D * 1.0 + D * math.log(4.0) ** 2), rel=1e-5)
    assert prior.penalty(torch.randn(1, D)) is None and prior.penalty(None) is None
    off = PRIORS.get("flow").cls(from_dict(PRIORS.get("flow").config_cls, {"gauge": 0.0}), D)
    assert off.penalty(2 * z + 1) is None


def test_flow_gauge_term_is_in_the_training_loss_only():
    """Training mode: the factor site z_gauge carries −penalty(z) for every datapoint; evaluation mode: no site."""
    torch.manual_seed(0)
    model = tiny_vae({"type": "flow"})
    x = grid_data(8).bernoulli()
    guide = poutine.trace(model.guide).get_trace(x)
    trace = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x)
    site = trace.nodes["z_gauge"]
    z = trace.nodes["z"]["value"]
    expected = -model.prior.penalty(z)
    assert torch.allclose(site["fn"].log_prob(site["value"]), expected.expand(8), atol=1e-6)
    model.eval()
    assert "z_gauge" not in poutine.trace(model.model).get_trace(x).nodes
    # point codes (the autoencoder family's Delta guide) have no aggregate posterior: no term in training either
    codes = tiny_model("autoencoder", (1, 4, 4), 10, latent_dim=D, hidden_dims=[16], prior={"type": "flow"})
    guide = poutine.trace(codes.guide).get_trace(x)
    assert "z_gauge" not in poutine.trace(poutine.replay(codes.model, trace=guide)).get_trace(x).nodes


def test_vamp_gauge_term_is_in_the_training_loss_only():
    """Training mode adds B · penalty to −ELBO (one-pass and Pyro's ELBO alike); evaluation mode, and so every
    held-out number, has no gauge term: a gauge-1 model scores as the same weights with gauge 0."""
    torch.manual_seed(0)
    pinned, free = (tiny_vae({"type": "vamp", "num_components": 5, "gauge": g}) for g in (1.0, 0.0))
    free.load_state_dict(pinned.state_dict())
    x = grid_data(8).bernoulli()
    objective = OBJECTIVES.get("elbo").config_cls()
    for replay in (False, True):
        losses = {}
        for name, model in (("pinned", pinned), ("free", free)):
            torch.manual_seed(1)
            losses[name] = compile_loss(model, objective, replay=replay, notify=None).loss(x)
        assert torch.allclose(losses["pinned"] - losses["free"], 8 * pinned.prior.penalty(), atol=1e-4)
    data = ImageData("toy", x, torch.zeros(8, dtype=torch.long), x, torch.zeros(8, dtype=torch.long), 10)
    scores = []
    for model in (pinned, free):
        model.eval()
        torch.manual_seed(2)
        scores.append(elbo_and_iwae(model, data, num_samples=3))
    assert scores[0] == scores[1]
    torch.manual_seed(1)  # Pyro's own ELBO in evaluation mode: the gauge-free loss
    assert Trace_ELBO().loss(pinned.model, pinned.guide, x) == pytest.approx(losses["free"].item(), abs=1e-3)


@pytest.mark.parametrize("transform", ["affine_autoregressive", "spline_autoregressive"])
def test_flow_log_prob_is_change_of_variables(transform):
    prior = build_prior("flow", transform=transform, num_layers=2, hidden_dims=[8])
    for p in prior.parameters():  # move away from the near-identity initialisation
        torch.nn.init.normal_(p, std=0.3)
    z = torch.randn(4, D)

    def inverse(v):  # f⁻¹ = inverse of each layer, last layer first
        for t in reversed(prior._chain):
            v = t.inv(v)
        return v

    for i in range(4):
        eps = inverse(z[i])
        jac = torch.autograd.functional.jacobian(inverse, z[i])
        manual = dist.Normal(0.0, 1.0).log_prob(eps).sum() + torch.linalg.slogdet(jac)[1]
        assert torch.allclose(prior.log_prob(z[i:i + 1])[0], manual, atol=1e-4)
    assert len(list(prior.parameters())) > 0
    assert prior.distribution().sample((3,)).shape == (3, D)


def test_gmm_balance_term_is_the_entropy_of_the_batch_mean_responsibility_in_training_only():
    prior = build_prior("gmm", num_components=4, balance=0.5)
    z = torch.randn(2, 6, D)  # 2 particles of a batch of 6
    q_bar = prior.responsibilities(z).reshape(-1, 4).mean(0)
    entropy = -(q_bar * q_bar.log()).sum()
    omega = prior.penalty(z)
    assert omega.shape == () and torch.allclose(omega, -0.5 * entropy, atol=1e-6)
    omega.backward()
    assert prior.locs.grad is not None and prior.locs.grad.abs().sum() > 0  # it moves the components
    assert build_prior("gmm", num_components=4).penalty(z) is None  # balance 0: no term
    vae = tiny_vae({"type": "gmm", "num_components": 4, "balance": 1.0})
    x = grid_data(8).round()
    vae.train()
    trained = poutine.trace(vae.model).get_trace(x)
    assert trained.nodes["prior_penalty"]["fn"].log_factor.shape == (8,)  # +λ·H(q̄) per datapoint
    vae.eval()
    assert "prior_penalty" not in poutine.trace(vae.model).get_trace(x).nodes  # never in a held-out number


def test_gmm_balance_needs_the_marginal_form():
    with pytest.raises(ConfigError, match="model.prior.balance: needs form marginal, got form 'enumerate'"):
        build_prior("gmm", num_components=4, balance=1.0, form="enumerate")


# ---- the two GMM forms ----

def test_gmm_marginal_and_enumerated_forms_give_the_same_elbo():
    x = grid_data(20).round()
    marginal = tiny_vae({"type": "gmm", "num_components": 4, "form": "marginal"})
    explicit = tiny_vae({"type": "gmm", "num_components": 4, "form": "enumerate"})
    explicit.load_state_dict(marginal.state_dict())  # the same parameters
    losses = {}
    for name, model, elbo in [("marginal", marginal, Trace_ELBO), ("enumerate", explicit, TraceEnum_ELBO)]:
        pyro.set_rng_seed(1)
        estimator = elbo(num_particles=2000, vectorize_particles=True, max_plate_nesting=1)
        losses[name] = estimator.loss(model.model, model.guide, x)
    # same guide draws; p(z) = Σ_y p(y) p(z|y) exactly in both: equal up to float (and at most MC noise)
    assert losses["marginal"] == pytest.approx(losses["enumerate"], rel=1e-3)
    trace = poutine.trace(poutine.enum(explicit.model, first_available_dim=-2)).get_trace(x)
    assert trace.nodes["y"]["infer"]["enumerate"] == "parallel"
    assert trace.nodes["y"]["value"].shape == (4, 1)  # enumerated over the 4 components, left of the data plate


# ---- every prior x likelihood pair trains ----

# the unconditional proper priors (conditional p(z|c) and an improper flat prior belong to other models' tests)
PRIOR_CASES = ["normal", "gmm", "gmm-enumerate", "vamp", "flow", "laplace"]
LIKELIHOOD_CASES = pointwise_likelihoods() + ["gaussian-decoder"]


def _spec(case: str):
    name, _, variant = case.partition("-")
    if not variant:
        return {"type": name}
    return {"type": name, "form": variant} if name == "gmm" else {"type": name, "learn": variant}


@pytest.mark.parametrize("likelihood", LIKELIHOOD_CASES)
@pytest.mark.parametrize("prior", PRIOR_CASES)
def test_every_prior_likelihood_pair_trains(prior, likelihood):
    model = tiny_vae(_spec(prior), _spec(likelihood))
    x = grid_data()
    if likelihood in ("poisson", "negative_binomial"):  # counts 0..10, not grey levels
        x = (x * 10).round()
    model.likelihood.validate(x)
    enumerate_ = prior.endswith("enumerate")
    elbo = (TraceEnum_ELBO if enumerate_ else Trace_ELBO)(max_plate_nesting=1)
    svi = SVI(model.model, model.guide, Adam({"lr": 1e-3}), elbo)
    losses = [svi.step(x) for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    model_sites = {n for n, s in poutine.trace(model.model).get_trace(x).nodes.items() if s["type"] == "sample"}
    gauge = {"z_gauge"} if prior in ("vamp", "flow") else set()  # a learned prior's training-only gauge factor
    assert model_sites == ({"data", "y", "z", "x"} if enumerate_ else {"data", "z", "x"} | gauge)
    assert model.generate(2).shape == (2, 1, 4, 4)


# ---- clustering ----

def test_hungarian_accuracy_is_invariant_to_relabelling():
    labels = torch.randint(0, 5, (200,)).numpy()
    perm = torch.randperm(5).numpy()
    assert hungarian_accuracy(perm[labels], labels) == 1.0
    assert purity(perm[labels], labels) == 1.0
    noisy = perm[labels].copy()
    noisy[:50] = 0
    assert hungarian_accuracy(noisy, labels) < 1.0


def test_clustering_metrics_only_for_mixture_priors():
    from pyro_vae.data import ImageData

    x = grid_data(30).round()
    data = ImageData("fake", x, torch.zeros(30, dtype=torch.long), x, torch.arange(30) % 3, 3, "none")
    assert clustering_metrics(tiny_vae("normal"), data) == {}
    metrics = clustering_metrics(tiny_vae({"type": "gmm", "num_components": 3}), data)
    assert 0.0 < metrics["cluster_accuracy"] <= 1.0 and 1 <= metrics["clusters_used"] <= 3
