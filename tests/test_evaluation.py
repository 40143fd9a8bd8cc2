"""Evaluation: importance-sampled log p(x) against the linear-Gaussian closed form, bound ordering,
the KL split (mutual information + marginal KL), active units, pictures, TensorBoard, CLI."""

from __future__ import annotations

import json
import math

import pyro
import pytest
import torch
from conftest import tiny_overrides

from pyro_vae.cli import main
from pyro_vae.data import ImageData
from pyro_vae.evaluation import (active_units, analytic_kl, evaluate, interpolation_images, kl_split,
                                 linear_gaussian_log_marginal, log_likelihood_batch, traversal_images)
from pyro_vae.evaluation import test_log_likelihood as held_out_log_likelihood
from pyro_vae.likelihoods.gaussian import GaussianConfig
from pyro_vae.models.vae import VAE, VAEConfig
from pyro_vae.nets.linear import LinearConfig
from pyro_vae.run import load_run, train

DATA_SHAPE, LATENT, SIGMA = (1, 2, 3), 2, 0.5


def linear_gaussian(exact_posterior: bool = True, shift: float = 0.0, widen: float = 1.0, seed: int = 0) -> VAE:
    """x = Wz + b + σε, z ~ N(0, I), with orthogonal columns of W so the true posterior is diagonal:
    q(z|x) = N(ΣWᵀ(x − b)/σ², Σ), Σ = (I + WᵀW/σ²)⁻¹. ``shift``/``widen`` move q away from it."""
    torch.manual_seed(seed)
    config = VAEConfig(latent_dim=LATENT, network=LinearConfig(), likelihood=GaussianConfig(sigma=SIGMA))
    vae = VAE(config, DATA_SHAPE)
    p = math.prod(DATA_SHAPE)
    q, _ = torch.linalg.qr(torch.randn(p, LATENT))
    W, b = q * torch.tensor([1.5, 0.7]), 0.3 * torch.randn(p)
    post_var = 1.0 / (1.0 + (W ** 2).sum(0) / SIGMA ** 2)  # diag Σ
    gain = post_var[:, None] * W.T / SIGMA ** 2
    with torch.no_grad():
        vae.decoder.linear.weight.copy_(W)
        vae.decoder.linear.bias.copy_(b)
        head = vae.encoder.head
        head.loc.weight.copy_(gain if exact_posterior else torch.randn_like(gain))
        head.loc.bias.copy_(-gain @ b + shift)
        head.logvar.weight.zero_()
        head.logvar.bias.copy_(torch.log(post_var * widen ** 2))
    return vae.eval()


def linear_data(vae: VAE, n: int = 64) -> ImageData:
    with torch.no_grad():
        x = vae.model(num_samples=n).reshape(n, *DATA_SHAPE)
    y = torch.zeros(n, dtype=torch.long)
    return ImageData("linear", x, y, x, y, num_classes=1)


def test_exact_posterior_gives_the_closed_form_log_likelihood():
    vae = linear_gaussian()
    data = linear_data(vae)
    exact = linear_gaussian_log_marginal(vae, data.test_x)
    ll = held_out_log_likelihood(vae, data, num_samples=7, batch_size=20)
    # q(z|x) = p(z|x): every importance weight is p(x), so ELBO = IWAE_K = log p(x) for any K
    assert torch.allclose(ll.log_px, exact, atol=1e-3)
    assert torch.allclose(ll.elbo, exact, atol=1e-3)


def test_importance_sampled_log_likelihood_matches_closed_form_and_bounds_are_ordered():
    vae = linear_gaussian(exact_posterior=True, shift=0.4, widen=1.6)  # a wrong but overlapping q
    data = linear_data(vae, 40)
    exact = linear_gaussian_log_marginal(vae, data.test_x)
    x = data.test_x
    # K = 5000 in chunks of 700 (the last chunk is partial): streaming logsumexp
    big = log_likelihood_batch(vae, x, num_samples=5000, chunk_size=700)
    iwae_10 = log_likelihood_batch(vae, x, num_samples=10)
    assert (big.log_px - exact).abs().max() < 0.05
    elbo, k10, k5000, truth = (float(t.mean()) for t in (big.elbo, iwae_10.log_px, big.log_px, exact))
    assert elbo < k10 - 0.05 < k5000 and k5000 < truth + 0.02  # ELBO ≤ IWAE_10 ≤ IWAE_5000 ≤ log p(x)
    assert truth - elbo > 0.2  # the gap closed by importance sampling is real, not noise


def test_chunked_streaming_logsumexp_is_exact():
    vae = linear_gaussian()  # exact posterior: every weight is p(x), so any error in the reduction shows
    x = linear_data(vae, 16).test_x
    chunked = log_likelihood_batch(vae, x, num_samples=600, chunk_size=7)  # 86 passes, the last one partial
    assert torch.allclose(chunked.log_px, linear_gaussian_log_marginal(vae, x), atol=1e-3)
    assert torch.allclose(chunked.elbo, chunked.log_px, atol=1e-3)


def test_closed_form_kl_matches_monte_carlo():
    vae = linear_gaussian(exact_posterior=False, widen=0.5)
    x = linear_data(vae, 32).test_x
    mc = log_likelihood_batch(vae, x, num_samples=4000).kl
    exact = analytic_kl(vae, x).detach()
    assert torch.allclose(mc, exact, atol=0.1)
    assert float(mc.mean()) == pytest.approx(float(exact.mean()), abs=0.03)


def test_kl_split_adds_up_and_mutual_information_is_in_range():
    vae = linear_gaussian(exact_posterior=False)
    data = linear_data(vae, 200)
    split = kl_split(vae, data.test_x, num_samples=20, batch_size=64)
    assert split.mutual_info + split.marginal_kl == pytest.approx(split.kl, abs=1e-4)
    assert -0.05 < split.mutual_info <= math.log(200)
    assert split.marginal_kl > -0.05
    assert split.kl == pytest.approx(float(analytic_kl(vae, data.test_x).detach().mean()), abs=0.1)


def test_mutual_information_extremes():
    vae = linear_gaussian(exact_posterior=False)
    data = linear_data(vae, 100)
    with torch.no_grad():  # q(z|x) ignores x: q(z) = q(z|x), I = 0 exactly, marginal KL = KL
        vae.encoder.head.loc.weight.zero_()
    none = kl_split(vae, data.test_x, num_samples=5)
    assert none.mutual_info == pytest.approx(0.0, abs=1e-5) and none.marginal_kl == pytest.approx(none.kl, abs=1e-4)
    with torch.no_grad():  # sharp, far-apart posteriors: every z identifies its x, I = log N
        vae.encoder.head.loc.weight.mul_(0).add_(torch.randn_like(vae.encoder.head.loc.weight) * 100)
        vae.encoder.head.logvar.bias.fill_(-12.0)
    full = kl_split(vae, data.test_x, num_samples=5)
    assert full.mutual_info == pytest.approx(math.log(100), abs=1e-3)


def test_active_units_count_dims_whose_posterior_mean_varies():
    vae = linear_gaussian(exact_posterior=False)
    data = linear_data(vae, 100)
    assert active_units(vae, data).count == 2
    with torch.no_grad():
        vae.encoder.head.loc.weight[1].zero_()  # dim 2 collapsed: E[z_2|x] constant
    units = active_units(vae, data)
    assert units.count == 1 and units.active.tolist() == [True, False] and units.as_list()[1] == 0.0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One seconds-long digits run shared by the tests below (TensorBoard on when installed)."""
    try:
        import tensorboard  # noqa: F401
        extra = ["train.tensorboard=true"]
    except ImportError:
        extra = []
    out = tmp_path_factory.mktemp("eval") / "run"
    train(None, out, tiny_overrides("model.latent_dim=3", "train.objective.warmup_steps=10", *extra))
    return out


def test_report_on_a_trained_run_and_pictures(tiny_run):
    run = load_run(tiny_run)
    report = run.evaluate(num_samples=50)
    assert report["test_elbo"] == pytest.approx(report["reconstruction"] - report["kl"], abs=1e-3)
    assert report["test_elbo"] < report["test_log_likelihood"] == report["test_iwae"] < 0
    assert report["kl"] == pytest.approx(report["kl_analytic"], rel=0.1, abs=0.2)
    assert report["mutual_info"] + report["marginal_kl"] == pytest.approx(report["kl_split_total"], abs=1e-4)
    assert 0 <= report["mutual_info"] <= report["log_num_test"] == pytest.approx(math.log(report["num_test"]))
    assert 0 <= report["active_units"] <= report["latent_dim"] == 3
    assert (tiny_run / "interpolation.png").is_file() and (tiny_run / "traversal.png").is_file()
    x = run.data().test_x[:4]
    interp = interpolation_images(run.model, x[:2], x[2:], steps=5)
    assert interp.shape == (2, 5, *x.shape[1:])
    assert torch.allclose(interp[:, 0], run.model.reconstruct(x[:2]), atol=1e-5)
    assert torch.allclose(interp[:, -1], run.model.reconstruct(x[2:]), atol=1e-5)
    trav = traversal_images(run.model, x[0], steps=7, span=3.0)
    z = run.model.encode(x[:1])[0]
    z[0, 1] = -3.0  # row 1 (dim 2), first column: z_2 = −3, the other dims at μ(x)
    assert trav.shape == (3, 7, *x.shape[1:]) and torch.allclose(trav[1, 0], run.model.decode(z)[0], atol=1e-5)


def test_report_on_the_linear_gaussian_model():
    vae = linear_gaussian()
    data = linear_data(vae, 30)
    report = evaluate(vae, data, num_samples=5)
    exact = float(linear_gaussian_log_marginal(vae, data.test_x).mean())
    assert report["test_log_likelihood"] == pytest.approx(exact, abs=1e-3)
    assert report["kl"] == pytest.approx(report["kl_analytic"], abs=0.5) and report["active_units"] == 2


def test_cli_evaluate_prints_the_report(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--num-samples", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"test_elbo", "test_log_likelihood", "reconstruction", "kl", "mutual_info", "marginal_kl",
            "active_units"} <= set(result)


def test_tensorboard_logs_parts_images_and_evaluation(tiny_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tiny_run
    run = load_run(out)
    run.evaluate(num_samples=5)
    tags = {"scalars": set(), "images": set()}
    for events in (out / "tensorboard").glob("events.*"):
        acc = EventAccumulator(str(events)).Reload()
        for kind in tags:
            tags[kind] |= set(acc.Tags()[kind])
    assert {"elbo/train", "elbo/test", "test/reconstruction", "test/kl", "objective/beta",
            "eval/test_log_likelihood", "eval/mutual_info"} <= tags["scalars"]
    assert {"images/samples", "images/reconstructions"} <= tags["images"]
    assert len(run.history) == 2
