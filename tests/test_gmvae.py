"""GMVAE: the enumerated ELBO against its closed form in y, q(y|x) reaching the exact posterior over components,
the mixture q(z|x), the sites, config errors, clustering and evaluation."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO

from conftest import tiny_model, tiny_overrides
from pyro_vae import load_config
from pyro_vae.config.schema import from_dict
from pyro_vae.data import load_data
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.evaluation.clustering import cluster_probs, clustering_metrics
from pyro_vae.models import MODELS, build_model
from pyro_vae.models.gmvae import GMVAEConfig
from pyro_vae.train import factory as engines
from pyro_vae.train.config import TrainConfig

SHAPE = (1, 4, 4)


def tiny_gmvae(k=4, latent_dim=3, **options):
    return tiny_model("gmvae", SHAPE, 10, latent_dim=latent_dim, hidden_dims=[16], classifier_dims=[16],
                      prior={"type": "gmm", "form": "enumerate", "num_components": k}, **options)


def binary(n=6):
    return torch.randint(0, 2, (n, *SHAPE)).float()


def perturbed(k=4, latent_dim=3, std=0.5):
    """A tiny GMVAE whose prior components are moved away from their init (and π away from uniform)."""
    model = tiny_gmvae(k=k, latent_dim=latent_dim)
    for p in model.prior.parameters():
        torch.nn.init.normal_(p, std=std)
    return model


def component_terms(model, x, z, loc, scale):
    """log p(x|z_k) + log π_k + log N(z_k; μ_k, σ_k) − log q(z_k|x,k), shape ``z.shape[:-1]`` = (…, K, B)."""
    weights, locs, scales = model.prior.components()
    return (model.likelihood.distribution(model.decoder(z)).log_prob(x) + weights.log()[:, None]
            + dist.Normal(locs[:, None], scales[:, None]).to_event(1).log_prob(z)
            - dist.Normal(loc, scale).to_event(1).log_prob(z))


def test_elbo_sums_y_out_weighted_by_q_y_given_x():
    """−loss = Σ_k q(k|x) [log p(x|z_k) + log π_k + log N(z_k; μ_k, σ_k) − log q(z_k|x,k) − log q(k|x)],
    z_k ~ q(z|x,k): one draw per component, at the guide's own ε."""
    model, x = perturbed(), binary()
    pyro.set_rng_seed(1)
    loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model.model, model.guide, x)
    pyro.set_rng_seed(1)  # y is enumerated, not drawn: the guide's only random draw is z's ε, shape (K, B, D)
    loc, scale = model.encode_given(x, torch.arange(4).unsqueeze(-1))
    z = dist.Normal(loc, scale).rsample()
    with torch.no_grad():
        q = model.classifier(x).log_softmax(-1).T  # (K, B)
        expected = (q.exp() * (component_terms(model, x, z, loc, scale) - q)).sum()
    assert -loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_q_y_given_x_learns_the_posterior_over_components():
    """With everything else fixed, the ELBO's optimum is q*(k|x) ∝ π_k exp ELBO_k(x) (ELBO_k: the bracket above
    in expectation over z_k): training only the classifier through TraceEnum_ELBO reaches it."""
    model, x = perturbed(k=3, std=1.0), binary(8)
    with torch.no_grad():
        loc, scale = model.encode_given(x, torch.arange(3).unsqueeze(-1))
        z = dist.Normal(loc, scale).sample((4000,))
        target = component_terms(model, x, z, loc, scale).mean(0).softmax(0).T  # (B, K)
    for p in model.parameters():
        p.requires_grad_(p in set(model.classifier.parameters()))
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=32, vectorize_particles=True)
    opt = torch.optim.Adam(model.classifier.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [300, 500], 0.1)
    with pytest.warns(UserWarning, match="not registered in the param store"):  # the frozen weights
        for _ in range(700):
            opt.zero_grad()
            elbo.differentiable_loss(model.model, model.guide, x).backward()
            opt.step()
            sched.step()
    assert target.max(-1).values.min() > 0.7  # a clear preference, not near-uniform targets
    assert (model.cluster_probs(x) - target).abs().max() < 0.04


def test_encode_gives_the_moments_of_the_mixture_q_z_given_x():
    model, x = perturbed(k=3), binary(2)
    guide = poutine.trace(model.guide)  # not enumerated: y ~ q(y|x), then z ~ q(z|x,y)
    with pyro.plate("samples", 100_000, dim=-2):
        z = guide.get_trace(x).nodes["z"]["value"]
    mean, std = model.encode(x)
    assert torch.allclose(z.mean(0), mean, atol=0.02)
    assert torch.allclose(z.std(0), std, atol=0.02)


def test_sites_and_enumeration():
    model, x = tiny_gmvae(k=5), binary()
    guide = poutine.trace(poutine.enum(model.guide, first_available_dim=-2)).get_trace(x)
    assert guide.nodes["y"]["infer"]["enumerate"] == "parallel"
    assert guide.nodes["y"]["value"].shape == (5, 1)  # all 5 components, left of the data plate
    assert guide.nodes["z"]["fn"].batch_shape == (5, 6)  # q(z|x,y) for every enumerated y and datapoint
    trace = poutine.trace(poutine.replay(model.model, trace=guide)).get_trace(x)
    sites = {name for name, site in trace.nodes.items() if site["type"] == "sample"}
    assert sites == {"data", "y", "z", "x"}
    assert trace.nodes["x"]["fn"].batch_shape == (5, 6)


@pytest.mark.parametrize("prior", [{"type": "gmm", "form": "marginal"}, {"type": "normal"}])
def test_prior_must_be_the_enumerated_gmm(prior):
    config = from_dict(GMVAEConfig, {"prior": prior})
    with pytest.raises(ConfigError, match="model.prior: gmvae needs type 'gmm' with form 'enumerate'"):
        build_model(config, SHAPE, 10)


@pytest.mark.parametrize("model_type,extra", [("gmvae", []), ("vae", ["model.prior=gmm", "model.prior.form=enumerate"])])
def test_enumerated_sites_need_the_enum_objective(model_type, extra):
    """Any other ELBO would draw y from the model: a ConfigError names the key before training starts."""
    config = load_config(None, tiny_overrides(f"model.type={model_type}", *extra))
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape, data.num_classes)
    assert model.enumerated_sites == ("y",)
    for objective in ["elbo", "meanfield", "iwae"]:
        with pytest.raises(ConfigError, match=f"train.objective.type: '{objective}' cannot train .* 'y'"):
            engines.build_engine(model, from_dict(TrainConfig, {"objective": {"type": objective}}))
    assert engines.build_engine(model, from_dict(TrainConfig, {"objective": {"type": "enum"}})) is not None


def test_clusters_are_read_off_q_y_given_x():
    model = tiny_gmvae(k=4)
    x = binary(50)
    probs = cluster_probs(model, x)
    assert torch.allclose(probs, model.classifier(x).softmax(-1))
    with torch.no_grad():  # q(y|x) puts every x in component 2, whatever the prior says
        model.classifier[-1].bias.copy_(torch.tensor([0.0, 0.0, 50.0, 0.0]))
    assert (cluster_probs(model, x).argmax(-1) == 2).all()


def test_evaluation_of_a_gmvae_run():
    """Importance sampling with y drawn from q(y|x): finite, the IWAE bound above the ELBO; clustering metrics."""
    config = load_config(None, tiny_overrides("model.type=gmvae", "model.prior.num_components=3",
                                              "train.objective.type=enum"))
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape, data.num_classes)
    bounds = elbo_and_iwae(model, data, num_samples=20)
    assert all(torch.isfinite(torch.tensor(v)) for v in bounds.values())
    assert bounds["iwae"] >= bounds["elbo"]
    metrics = clustering_metrics(model, data)
    assert set(metrics) == {"cluster_accuracy", "cluster_purity", "cluster_nmi", "cluster_ari", "clusters_used",
                            "components_used", "num_components"}
    assert 1 <= metrics["components_used"] <= metrics["clusters_used"] <= metrics["num_components"] == 3


def test_balance_term_adds_lambda_b_times_the_marginal_entropy_in_training_only():
    """With balance λ the training loss is the ELBO's minus λ·B·H(q̄(y)), q̄ the batch mean of q(y|x);
    in eval mode (held-out ELBO, log p(x)) the model is the plain GMVAE."""
    plain, x = perturbed(), binary(6)
    balanced = tiny_gmvae(balance=2.5)
    balanced.load_state_dict(plain.state_dict())
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    losses = {}
    for name, model in (("plain", plain), ("balanced", balanced)):
        pyro.set_rng_seed(4)
        losses[name] = elbo.differentiable_loss(model.model, model.guide, x).item()
    with torch.no_grad():
        q_bar = plain.classifier(x).softmax(-1).mean(0)
        entropy = -(q_bar * q_bar.log()).sum().item()
    assert losses["balanced"] == pytest.approx(losses["plain"] - 2.5 * 6 * entropy, rel=1e-5)
    balanced.eval()
    pyro.set_rng_seed(4)
    assert elbo.differentiable_loss(balanced.model, balanced.guide, x).item() == pytest.approx(losses["plain"], rel=1e-6)


def test_balance_must_not_be_negative():
    with pytest.raises(ConfigError, match="balance"):
        tiny_gmvae(balance=-1.0)


def test_registered():
    assert MODELS.get("gmvae").cls.__name__ == "GMVAE"


def test_mixture_initialisation_fits_the_prior_and_q_y_given_x():
    """pretrain.epochs > 0: after pretraining, a GaussianMixture on the codes of q(z|x, y=uniform) sets π, μ, σ and
    q(y|x) is fitted to its responsibilities: the classifier's clusters then mostly agree with the mixture's."""
    from pyro_vae.priors.gmm import fit_gaussian_mixture

    config = load_config(None, tiny_overrides("model.type=gmvae", "model.prior.num_components=3",
                                              "train.objective.type=enum", "data.limit=300",
                                              "model.pretrain.epochs=1", "model.classifier_steps=150"))
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape, data.num_classes)
    assert model.pretrain_epochs == 1
    with torch.no_grad():
        model.end_pretraining(data, seed=0)
        means = model.pretrain_codes(data.train_x)[0]
        weights, locs, _ = fit_gaussian_mixture(means, 3, 0, config.model.pretrain.gmm_restarts)
        assert torch.allclose(model.prior.components()[1], locs, atol=1e-4)
        agree = (cluster_probs(model, data.train_x).argmax(-1) == model.prior.responsibilities(means).argmax(-1))
    assert agree.float().mean() > 0.8


def test_denoising_pretraining_goes_through_the_gmvae_codes(monkeypatch):
    """kind denoising on the GMVAE: the codes of q(z|x̃, y=uniform) of the masked x, scored against the clean x."""
    config = load_config(None, tiny_overrides("model.type=gmvae", "model.prior.num_components=3",
                                              "train.objective.type=enum", "model.pretrain.epochs=1",
                                              "model.pretrain.kind=denoising", "model.pretrain.mask_rate=0.5"))
    model = build_model(config.model, (1, 8, 8), 10)
    x = torch.full((4, 1, 8, 8), 0.5)
    seen = []
    codes = model.pretrain_codes
    monkeypatch.setattr(model, "pretrain_codes", lambda x_in: seen.append(x_in) or codes(x_in))
    loss = model.pretrain_loss(x)
    assert ((seen[0].flatten(1) == 0).sum(1) == 32).all()
    expected = -model.likelihood.distribution(model.decoder(codes(seen[0])[0])).log_prob(x).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and loss.requires_grad
