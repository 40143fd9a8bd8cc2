"""VaDE: its ELBO against the enumerated and the closed-form sum over c, the pretraining phase (a GMM fitted
to the pretrained latent means initialises the prior; checkpointed and resumed), clustering, bad input."""

from __future__ import annotations


import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from conftest import same_metrics, tiny_model, tiny_overrides
from pyro_vae import load_config, resume, train
from pyro_vae.cli import main
from pyro_vae.errors import ConfigError
from pyro_vae.evaluation.clustering import assignment_metrics, cluster_probs
from pyro_vae.models import build_model
from pyro_vae.priors.gmm import fit_gaussian_mixture, mixture_of_groups
from pyro_vae.run import Run
from pyro_vae.train.signals import Interrupted

SHAPE = (1, 4, 4)


def tiny_vade(form="marginal", k=3, latent_dim=2, **options):
    model = tiny_model("vade", SHAPE, 10, latent_dim=latent_dim, hidden_dims=[16],
                       prior={"type": "gmm", "form": form, "num_components": k}, **options)
    with torch.no_grad():  # components away from their init, π away from uniform
        model.prior.set_components(torch.tensor([0.5, 0.3, 0.2][:k]), torch.randn(k, latent_dim),
                                   0.5 + torch.rand(k, latent_dim))
    return model


def vade_overrides(*extra):
    return tiny_overrides("model.type=vade", "model.pretrain.epochs=2", "data.limit=300", *extra)


@pytest.fixture(autouse=True)
def _no_pictures(monkeypatch):
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)


def test_elbo_equals_the_closed_form_sum_over_c():
    """−loss = log p(x|z) + log Σ_c π_c N(z; μ_c, σ_c) − log q(z|x) at the guide's z, which equals the VaDE form
    log p(x|z) + Σ_c γ_c (log π_c N(z; μ_c, σ_c) − log γ_c) − log q(z|x) with γ_c = p(c|z); the enumerated prior
    (TraceEnum_ELBO sums the model-only site c) gives the same number."""
    x = torch.randint(0, 2, (5, *SHAPE)).float()
    model = tiny_vade("marginal")
    pyro.set_rng_seed(3)
    loss = Trace_ELBO(max_plate_nesting=1).differentiable_loss(model.model, model.guide, x)
    enumerated = tiny_vade("enumerate")
    enumerated.load_state_dict(model.state_dict())
    pyro.set_rng_seed(3)
    loss_enum = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(enumerated.model, enumerated.guide, x)
    pyro.set_rng_seed(3)  # the guide's only draw: z = μ(x) + σ(x) ε
    with torch.no_grad():
        loc, scale = model.encode(x)
        z = dist.Normal(loc, scale).rsample()
        weights, locs, scales = model.prior.components()
        log_joint_c = weights.log() + dist.Normal(locs, scales).to_event(1).log_prob(z.unsqueeze(-2))  # (B, K)
        gamma = model.prior.responsibilities(z)
        rest = (model.likelihood.distribution(model.decoder(z)).log_prob(x)
                - dist.Normal(loc, scale).to_event(1).log_prob(z))
        closed = rest + log_joint_c.logsumexp(-1)
        vade_form = rest + (gamma * (log_joint_c - gamma.log())).sum(-1)
    assert -loss.item() == pytest.approx(closed.sum().item(), rel=1e-5)
    assert -loss.item() == pytest.approx(vade_form.sum().item(), rel=1e-5)
    assert -loss_enum.item() == pytest.approx(closed.sum().item(), rel=1e-5)


def test_cluster_posterior_is_the_prior_responsibility_at_the_mean():
    model, x = tiny_vade(), torch.randint(0, 2, (7, *SHAPE)).float()
    probs = cluster_probs(model, x)
    weights, locs, scales = model.prior.components()
    log_joint = weights.log() + dist.Normal(locs, scales).to_event(1).log_prob(model.encode(x)[0].unsqueeze(-2))
    assert probs.shape == (7, 3)
    assert torch.allclose(probs, log_joint.softmax(-1), atol=1e-6)


@pytest.mark.parametrize("kind", ["autoencoder", "denoising", "vae"])
def test_pretrain_loss(kind):
    model, x = tiny_vade(pretrain={"kind": kind}), torch.randint(0, 2, (4, *SHAPE)).float()
    loss = model.pretrain_loss(x)
    loc = model.encode(x)[0]
    if kind == "autoencoder":  # −Σ log p(x | z = μ(x)): deterministic
        expected = -model.likelihood.distribution(model.decoder(loc)).log_prob(x).sum()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.requires_grad and torch.isfinite(loss)


@pytest.mark.parametrize("corruption, zeros", [("mask", 4), ("gaussian", 0)])
def test_denoising_pretraining_encodes_the_corrupted_x_and_scores_the_clean_one(corruption, zeros):
    """kind denoising: −Σ log p(x | z = μ(x̃)), x̃ the denoising autoencoder's corruption of x (mask: exactly
    round(0.25 · 16) = 4 of each image's 16 pixels zeroed; gaussian: x + 0.3 ε)."""
    model = tiny_vade(pretrain={"kind": "denoising", "corruption": corruption, "mask_rate": 0.25, "noise": 0.3})
    x = torch.full((5, *SHAPE), 0.5)
    seen = []
    encoder = model.encoder.forward
    model.encoder.forward = lambda x_in: seen.append(x_in) or encoder(x_in)
    torch.manual_seed(1)
    loss = model.pretrain_loss(x)
    (x_tilde,) = seen
    if corruption == "mask":
        assert ((x_tilde.flatten(1) == 0).sum(1) == zeros).all()
    else:
        torch.manual_seed(1)
        assert torch.equal(x_tilde, x + 0.3 * torch.randn_like(x))
    expected = -model.likelihood.distribution(model.decoder(encoder(x_tilde)[0])).log_prob(x).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    clean = -model.likelihood.distribution(model.decoder(encoder(x)[0])).log_prob(x).sum()  # kind autoencoder
    assert loss.item() != pytest.approx(clean.item(), rel=1e-6)


def test_shift_pretraining_needs_images():
    """kind denoising with the shift corruption: refused at build time on flat data, naming the key."""
    with pytest.raises(ConfigError, match="model.pretrain.corruption"):
        tiny_model("vade", (16,), 10, latent_dim=2, hidden_dims=[16], prior={"type": "gmm", "num_components": 3},
                   pretrain={"kind": "denoising", "corruption": "shift"})
    model = tiny_vade(pretrain={"kind": "denoising", "corruption": "shift", "max_shift": 1})
    assert torch.isfinite(model.pretrain_loss(torch.rand(5, *SHAPE)))


def test_gmm_fitted_to_latent_means_sets_the_prior():
    """end_pretraining = sklearn GaussianMixture(K, diag) on the training set's latent means, seeded."""
    from sklearn.mixture import GaussianMixture

    config = load_config(None, vade_overrides("model.prior.num_components=4"))
    from pyro_vae.data import load_data

    data = load_data(config.data, 0)
    model = build_model(config.model, data.shape, data.num_classes)
    with torch.no_grad():
        model.end_pretraining(data, seed=5)
        means = model.encode(data.train_x)[0].double().numpy()
    gmm = GaussianMixture(4, covariance_type="diag", n_init=config.model.pretrain.gmm_restarts, random_state=5,
                          reg_covar=1e-6).fit(means)
    weights, locs, scales = model.prior.components()
    assert np.allclose(weights.detach().numpy(), gmm.weights_, atol=1e-5)
    assert np.allclose(locs.detach().numpy(), gmm.means_, atol=1e-4)
    assert np.allclose(scales.detach().numpy(), np.sqrt(gmm.covariances_), atol=1e-4)


def test_inputs_init_sets_the_prior_from_the_kmeans_groups_of_the_inputs():
    """pretrain.init inputs: sklearn KMeans on the training inputs (seeded), then each group's latent-mean moments."""
    from sklearn.cluster import KMeans

    from pyro_vae.data import load_data

    config = load_config(None, vade_overrides("model.prior.num_components=4", "model.pretrain.init=inputs"))
    data = load_data(config.data, 0)
    model = build_model(config.model, data.shape, data.num_classes)
    with torch.no_grad():
        model.end_pretraining(data, seed=5)
        means = model.encode(data.train_x)[0].double().numpy()
    labels = KMeans(4, n_init=config.model.pretrain.gmm_restarts, random_state=5).fit_predict(
        data.train_x.flatten(1).double().numpy())
    weights, locs, scales = (t.detach().numpy() for t in model.prior.components())
    for k in range(4):
        group = means[labels == k]
        assert weights[k] == pytest.approx(len(group) / len(means), abs=1e-5)
        assert np.allclose(locs[k], group.mean(0), atol=1e-4)
        assert np.allclose(scales[k], group.std(0) + 1e-3, atol=1e-4)


def test_mixture_of_groups_is_each_groups_moments_and_fills_an_empty_group():
    z = torch.tensor([[0.0, 1.0], [2.0, 3.0], [10.0, 10.0], [4.0, 5.0]])
    weights, locs, scales = mixture_of_groups(z, torch.tensor([0, 0, 1, 0]), 3)
    assert torch.allclose(weights, torch.tensor([0.75, 0.25, 1e-6]) / (1 + 1e-6))
    assert torch.allclose(locs[:2], torch.tensor([[2.0, 3.0], [10.0, 10.0]]))
    assert torch.allclose(scales[0], torch.full((2,), (8 / 3) ** 0.5 + 1e-3))
    assert torch.allclose(scales[1], torch.full((2,), 1e-3))
    assert torch.allclose(locs[2], z.mean(0)) and torch.allclose(scales[2], z.std(0, unbiased=False) + 1e-3)


def test_fit_gaussian_mixture_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = torch.cat([c + 0.3 * torch.randn(200, 2, generator=gen) for c in centres])
    weights, locs, scales = fit_gaussian_mixture(z, 3, seed=0)
    order = locs[:, 0].argsort()
    assert torch.allclose(weights, torch.full((3,), 1 / 3), atol=1e-3)
    assert torch.allclose(locs[order][[0, 2]], centres[[0, 1]], atol=0.1)
    assert torch.allclose(scales, torch.full((3, 2), 0.3), atol=0.05)


def test_one_run_pretrains_then_trains_and_evaluates(tmp_path):
    run = train(load_config(None, vade_overrides()), tmp_path / "run")
    assert [row["epoch"] for row in run.history] == [1, 2]
    report = run.evaluate(num_samples=4)
    for key in ("cluster_accuracy", "cluster_nmi", "cluster_ari", "components_used", "test_log_likelihood"):
        assert key in report
    assert 1 <= report["components_used"] <= report["num_components"] == 10


def test_interrupted_in_pretraining_resumes_in_pretraining(tmp_path, interrupt_pretraining):
    """A stop during pretraining checkpoints the phase; the resumed run finishes pretraining (same batches),
    fits the GMM and trains: the same metrics as an uninterrupted run."""
    torch.set_num_threads(1)
    config = vade_overrides()
    reference = train(load_config(None, config), tmp_path / "ref")
    restore = interrupt_pretraining(5)  # end of pretraining epoch 1 (300 digits -> 270 train, 5 batches of 64)
    with pytest.raises(Interrupted, match="pretrain epoch 1"):
        train(load_config(None, config), tmp_path / "run")
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["trainer"]
    assert state["phase"] == "pretrain" and state["pretrain"]["epoch"] == 0 and state["batch"] == 5
    restore()
    assert same_metrics(resume(tmp_path / "run"), reference)


def test_assignment_metrics():
    labels = np.array([0, 0, 1, 1, 2, 2] * 50)
    perfect = assignment_metrics((labels + 1) % 3, labels)
    assert perfect["cluster_accuracy"] == 1.0 and perfect["cluster_ari"] == 1.0
    assert perfect["cluster_nmi"] == pytest.approx(1.0) and perfect["components_used"] == 3
    one = assignment_metrics(np.zeros_like(labels), labels)
    assert one["cluster_accuracy"] == pytest.approx(1 / 3) and one["components_used"] == 1
    assert one["cluster_ari"] == pytest.approx(0.0)
    few = np.where(np.arange(300) < 2, 3, (labels + 1) % 3)  # cluster 3 holds 2 of 300 points (< 1 %)
    metrics = assignment_metrics(few, labels)
    assert metrics["clusters_used"] == 4 and metrics["components_used"] == 3


@pytest.mark.parametrize("override, key", [
    ("model.prior.num_components=0", "model.prior.num_components"),
    ("model.prior=normal", "model.prior.type"),
    ("model.pretrain.epochs=-1", "model.pretrain.epochs"),
    ("model.pretrain.kind=pca", "model.pretrain.kind"),
    ("model.pretrain.gmm_restarts=0", "model.pretrain.gmm_restarts"),
    ("model.pretrain.mask_rate=1.5", "model.pretrain.mask_rate"),
    ("model.pretrain.corruption=blur", "model.pretrain.corruption"),
])
def test_bad_input_is_one_line_naming_the_key(tmp_path, capsys, override, key):
    assert main(["train", *vade_overrides(override), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
