"""The conditional VAE: sites and shapes, p(z|c), quadrant masking, the baseline, runs and bad input."""

import math

import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from conftest import REPO, tiny_overrides
from pyro_vae import DataError, load_config, load_run, train
from pyro_vae.cli import main
from pyro_vae.data.quadrants import visible_quadrants
from pyro_vae.infer import log_weights
from pyro_vae.models import build_model
from pyro_vae.models.baseline import init_from_baseline
from pyro_vae.priors.conditional import ConditionalPrior, ConditionalPriorConfig

SHAPE = (1, 8, 8)
B = 5


def make(*overrides, model="cvae"):
    extra = ["model.latent_dim=3"] if model == "cvae" else []
    config = load_config(None, [f"model.type={model}", "model.network.hidden_dims=[16]", *extra, *overrides])
    return build_model(config.model, SHAPE)


def batch():
    return torch.bernoulli(torch.full((B, *SHAPE), 0.4)), torch.arange(B) % 10


def traces(m, x, y):
    guide_tr = poutine.trace(m.guide).get_trace(x, y)
    return guide_tr, poutine.trace(poutine.replay(m.model, trace=guide_tr)).get_trace(x, y)


@pytest.mark.parametrize("condition", ["label", "quadrants"])
@pytest.mark.parametrize("prior", ["model.prior.learn=true", "model.prior.learn=false", "model.prior=normal"])
def test_sites_and_shapes(condition, prior):
    m = make(f"model.condition={condition}", prior)
    x, y = batch()
    guide_tr, model_tr = traces(m, x, y)
    z_q, z_p, x_site = guide_tr.nodes["z"], model_tr.nodes["z"], model_tr.nodes["x"]
    assert z_q["value"].shape == (B, 3) and z_q["fn"].event_shape == (3,)
    assert z_p["fn"].event_shape == (3,) and z_p["fn"].batch_shape == (B,)
    assert x_site["is_observed"] and x_site["fn"].event_shape == SHAPE and x_site["fn"].batch_shape == (B,)
    assert {n for n, s in model_tr.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)} == {"z", "x"}
    assert [f.name for f in x_site["cond_indep_stack"]] == ["data"]
    assert m.cond_dim == (10 if condition == "label" else 32)  # default: 2 visible quadrants
    lw = log_weights(m.model, m.guide, x, y, num_samples=7)
    assert lw.total.shape == (7, B) and torch.isfinite(lw.total).all()
    assert m.generate(4).shape == (4, *SHAPE) and m.reconstruct(x, y).shape == (B, *SHAPE)
    assert m.model(None, y, num_samples=B).shape == (B, *SHAPE)  # drawing x given c (labels, or blank quadrants)


def test_learned_prior_depends_on_condition():
    m = make()
    c = torch.eye(10)[:2]
    d = m.prior.distribution(c)
    assert d.batch_shape == (2,) and not torch.allclose(d.base_dist.loc[0], d.base_dist.loc[1])


def test_fixed_conditional_prior_is_standard_normal():
    prior = ConditionalPrior(ConditionalPriorConfig(learn=False), latent_dim=4, cond_dim=6)
    assert not list(prior.parameters())
    c, z = torch.randn(9, 6), torch.randn(9, 4)
    d = prior.distribution(c)
    assert d.batch_shape == (9,) and d.event_shape == (4,)
    assert torch.allclose(d.log_prob(z), dist.Normal(0.0, 1.0).log_prob(z).sum(-1))
    # inside the CVAE: the z site of the model scores N(0, I), whatever the label
    m = make("model.prior.learn=false")
    x, y = batch()
    _, model_tr = traces(m, x, y)
    z_site = model_tr.nodes["z"]
    assert torch.allclose(z_site["fn"].log_prob(z_site["value"]), dist.Normal(0.0, 1.0).log_prob(z_site["value"]).sum(-1))


def test_learned_prior_needs_a_condition():
    with pytest.raises(Exception, match="needs a conditional model"):
        ConditionalPrior(ConditionalPriorConfig(learn=True), latent_dim=4, cond_dim=0)


def pyro_input_mask(num: int, h: int = 28, w: int = 28) -> torch.Tensor:
    """The visible pixels of Pyro's examples/cvae/mnist.py ``MaskImages``: the target ``out`` is the image with
    the input quadrants set to −1; the input is the rest."""
    out = torch.zeros(h, w)
    out[h // 2:, : w // 2] = -1
    if num == 2:
        out[:, : w // 2] = -1
    if num == 3:
        out[: h // 2, :] = -1
    return out == -1


@pytest.mark.parametrize("visible, fraction", [(1, 0.25), (2, 0.5), (3, 0.75)])
def test_visible_quadrants(visible, fraction):
    mask = visible_quadrants((1, 28, 28), visible)
    assert mask.float().mean().item() == fraction
    assert mask[0, 27, 0] and not mask[0, 27, 27]  # bottom-left always shown, bottom-right always hidden
    assert torch.equal(mask[0], pyro_input_mask(visible))  # Pyro's patterns


@pytest.mark.parametrize("model", ["cvae", "baseline"])
def test_masking_leaves_visible_pixels_out_of_the_likelihood(model):
    m = make("model.condition=quadrants", "model.visible=1", model=model)
    x, y = batch()
    guide_tr, model_tr = traces(m, x, y)
    visible = visible_quadrants(SHAPE, 1)
    c = x[:, visible]
    z = guide_tr.nodes["z"]["value"] if model == "cvae" else x.new_zeros(B, 0)
    logits = m.decoder(z, c)[:, 0]
    per_pixel = dist.Bernoulli(logits=logits).log_prob(x)
    site = model_tr.nodes["x"]
    scored = site["fn"].log_prob(site["value"])
    assert torch.allclose(scored, (per_pixel * ~visible).sum((1, 2, 3)), atol=1e-5)
    assert not torch.allclose(scored, per_pixel.sum((1, 2, 3)))
    # flipping a visible pixel of the target (with c held fixed) leaves log p(x|z,c) unchanged
    flipped = x.clone()
    flipped[:, visible] = 1 - flipped[:, visible]
    assert torch.allclose(site["fn"].log_prob(flipped), scored)


def test_baseline_log_weight_is_its_hidden_pixel_nll():
    m = make("model.condition=quadrants", "model.visible=2", model="baseline")
    x, y = batch()
    lw = log_weights(m.model, m.guide, x, y, num_samples=3)
    hidden = ~visible_quadrants(SHAPE, 2)
    logits = m.predict(x[:, ~hidden])[:, 0]
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    assert set(lw.model) == {"x"} and not lw.guide
    assert torch.allclose(lw.total, -(nll * hidden).sum((1, 2, 3)).expand(3, B), atol=1e-5)


def test_cvae_initialized_from_baseline_predicts_like_it():
    baseline = make("model.condition=quadrants", model="baseline")
    cvae = make("model.condition=quadrants")
    init_from_baseline(cvae, baseline)
    x, _ = batch()
    c = x[:, visible_quadrants(SHAPE, 2)]
    z = torch.randn(B, 3)
    assert torch.allclose(cvae.decoder(z, c), baseline.predict(c), atol=1e-6)


def test_bad_condition_is_a_clear_error():
    m = make()
    x, y = batch()
    with pytest.raises(DataError, match="label 12 is outside the classes 0..9"):
        m.generate(3, torch.tensor([1, 12, 3]))
    with pytest.raises(DataError, match="expected integer labels of shape"):
        m.guide(x, torch.rand(B, 3))
    with pytest.raises(DataError, match="needs the labels"):
        m.guide(x)
    q = make("model.condition=quadrants")
    with pytest.raises(DataError, match="expected shape"):
        q.guide(torch.rand(B, 1, 6, 6))
    with pytest.raises(DataError, match="condition has width"):
        q.prior.distribution(torch.rand(B, 3))


def test_label_run_samples_by_class_and_cli_label(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(REPO / "configs" / "digits_cvae.yaml"), *tiny_overrides(), "--out", str(out)]) == 0
    assert {"samples_by_class.png", "latent.png", "samples.png"} <= {p.name for p in out.iterdir()}
    assert main(["sample", str(out), "--label", "7", "-n", "4", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    run = load_run(out)
    a, b = run.sample(3, label=2), run.sample(3, label=5)
    assert a.shape == (3, *SHAPE) and not torch.allclose(a, b)
    capsys.readouterr()
    assert main(["sample", str(out), "--label", "12"]) == 2
    assert "label 12 is outside the classes 0..9" in capsys.readouterr().err


def test_label_on_an_unconditional_run_is_an_error(tmp_path, capsys):
    out = tmp_path / "vae"
    train(None, out, tiny_overrides("train.epochs=1"))
    capsys.readouterr()
    assert main(["sample", str(out), "--label", "3"]) == 2
    assert "not conditioned on class labels" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["cvae", "baseline"])
def test_quadrant_runs_write_completions(tmp_path, model):
    overrides = ["train.epochs=1", "train.progress=false", "train.num_images=8", "train.eval_samples=2",
                 f"model.type={model}", "model.condition=quadrants", "model.network.hidden_dims=[32]"]
    run = train(None, tmp_path / model, overrides + (["model.latent_dim=2"] if model == "cvae" else []))
    names = {p.name for p in run.path.iterdir()}
    assert "completions.png" in names and ("latent.png" in names) == (model == "cvae")
    result = run.evaluate(num_samples=3)
    assert math.isfinite(result["test_iwae"]) and result["test_iwae"] < 0


def test_mnist_quadrant_config_smoke(tmp_path, mnist_root):
    overrides = [f"data.root={mnist_root}", "data.limit=300", "train.epochs=1", "train.progress=false",
                 "train.eval_samples=2", "train.num_images=8", "model.network.hidden_dims=[32]",
                 "model.prior.hidden_dims=[16]", "model.latent_dim=2"]
    run = train(REPO / "configs" / "mnist_cvae.yaml", tmp_path / "m", overrides)
    assert run.model.cond_dim == 196 and (run.path / "completions.png").is_file()
