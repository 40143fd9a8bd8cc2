"""The autoencoder family: Delta guide = MAP, contractive penalty = exact Jacobian norm, corruptions, toy data."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_vae.config.run import load_config
from pyro_vae.config.schema import from_dict
from pyro_vae.errors import ConfigError
from pyro_vae.models import MODELS, build_model
from pyro_vae.models.autoencoders import (
    jacobian_sq, jacobian_sq_closed_form, jacobian_sq_exact, jacobian_sq_hutchinson, mask_corruption,
    shift_corruption,
)
from pyro_vae.run import train


def _model(kind: str, data_shape=(1, 4, 4), **options):
    config = from_dict(MODELS.get(kind).config_cls, {"latent_dim": 3, "network": {"hidden_dims": [5]}, **options})
    return build_model(config, data_shape)


def _full_jacobian_sq(encoder, x):
    rows = [torch.autograd.functional.jacobian(lambda xi: encoder(xi.unsqueeze(0))[0].squeeze(0), xi) for xi in x]
    return torch.stack([j.pow(2).sum() for j in rows])


@pytest.mark.parametrize("kind", ["autoencoder", "sparse"])
def test_delta_guide_elbo_is_the_map_objective(kind):
    model = _model(kind)
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.4))
    loss = Trace_ELBO().loss(model.model, model.guide, x)
    h = model.encoder(x)[0]
    map_objective = model.likelihood.distribution(model.decoder(h)).log_prob(x).sum()
    if kind == "sparse":  # Laplace(0, 1): log p(h) = −Σ|h| − D log 2
        map_objective = map_objective + (-h.abs() - torch.log(torch.tensor(2.0))).sum()
    assert loss == pytest.approx(-map_objective.item(), rel=1e-5)


def test_contractive_elbo_adds_the_penalty_factor():
    x = torch.rand(4, 1, 4, 4)
    cae = _model("contractive", weight=0.5, likelihood={"type": "gaussian"})
    ae = _model("autoencoder", likelihood={"type": "gaussian"})
    ae.load_state_dict(cae.state_dict())
    penalty = 0.5 * _full_jacobian_sq(cae.encoder, x).sum()
    gap = Trace_ELBO().loss(cae.model, cae.guide, x) - Trace_ELBO().loss(ae.model, ae.guide, x)
    assert gap == pytest.approx(penalty.item(), rel=1e-4)
    guide_trace = pyro.poutine.trace(cae.guide).get_trace(x)
    assert "contractive" in pyro.poutine.trace(pyro.poutine.replay(cae.model, guide_trace)).get_trace(x).nodes


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_closed_form_penalty_matches_autograd_jacobian(activation):
    model = _model("contractive", network={"hidden_dims": [7], "activation": activation})
    x = torch.randn(5, 1, 4, 4)
    expected = _full_jacobian_sq(model.encoder, x)
    torch.testing.assert_close(jacobian_sq_closed_form(model.encoder, x), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(jacobian_sq(model.encoder, x), expected, rtol=1e-5, atol=1e-6)  # auto = closed form


def test_exact_and_hutchinson_penalty_on_a_deeper_net():
    model = _model("contractive", network={"hidden_dims": [6, 5], "activation": "tanh"})
    x = torch.randn(3, 1, 4, 4)
    expected = _full_jacobian_sq(model.encoder, x)
    torch.testing.assert_close(jacobian_sq_exact(model.encoder, x), expected, rtol=1e-5, atol=1e-6)
    estimate = jacobian_sq_hutchinson(model.encoder, x, probes=4000)  # unbiased: mean converges to ‖J‖²
    torch.testing.assert_close(estimate, expected, rtol=0.1, atol=0.0)
    loss = jacobian_sq(model.encoder, x, "hutchinson").sum()  # differentiable w.r.t. the encoder weights
    loss.backward()
    assert model.encoder.body[0].weight.grad.abs().sum() > 0


def test_closed_form_needs_one_hidden_layer():
    with pytest.raises(ConfigError, match="model.jacobian"):
        _model("contractive", network={"hidden_dims": [6, 5]}, jacobian="closed_form")


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_mask_corruption_hides_the_stated_fraction(rate):
    x = torch.rand(50, 1, 8, 8) + 0.5  # no zeros before masking
    hidden = (mask_corruption(x, rate) == 0).flatten(1).sum(1)
    assert (hidden == round(rate * 64)).all()
    x_tilde = mask_corruption(x, rate)
    assert torch.equal(x_tilde[x_tilde != 0], x[x_tilde != 0])


def _translated(image, a, b):
    """image(i + a, j + b), zero outside: the closed form of one shift."""
    h, w = image.shape[-2:]
    out = torch.zeros_like(image)
    for i in range(h):
        for j in range(w):
            if 0 <= i + a < h and 0 <= j + b < w:
                out[..., i, j] = image[..., i + a, j + b]
    return out


def test_shift_corruption_translates_each_image_by_a_uniform_offset():
    """Every x̃ is x translated by one (a, b) in {−1, 0, 1}², zero filled; over 450 images each of the 9 offsets
    turns up about 50 times."""
    torch.manual_seed(0)
    x = torch.rand(450, 2, 5, 6) + 0.5
    x_tilde = shift_corruption(x, 1)
    offsets = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    counts = dict.fromkeys(offsets, 0)
    for image, shifted in zip(x, x_tilde):
        (match,) = [o for o in offsets if torch.equal(shifted, _translated(image, *o))]
        counts[match] += 1
    assert all(20 <= n <= 80 for n in counts.values()), counts


def test_shift_corruption_needs_images():
    with pytest.raises(ConfigError, match="model.corruption.*shape \\(16,\\)"):
        _model("denoising", data_shape=(16,), corruption="shift")
    x = torch.rand(4, 1, 4, 4) + 0.5
    model = _model("denoising", corruption="shift", max_shift=2)
    torch.manual_seed(1)
    x_tilde = model.corrupt(x)
    assert x_tilde.shape == x.shape and not torch.equal(x_tilde, x)


def test_denoising_guide_encodes_corrupted_input():
    model = _model("denoising", corruption="mask", mask_rate=0.5)
    x = torch.rand(4, 1, 4, 4) + 0.5
    seen = []
    model.encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    model.guide(x)
    assert ((seen[0] == 0).flatten(1).sum(1) == 8).all()


def test_flat_prior_autoencoder_generates():
    assert _model("autoencoder").generate(3).shape == (3, 1, 4, 4)


def test_toy_dae_run_writes_the_vector_field(tmp_path):
    config = load_config("configs/toy_dae.yaml", ["data.num_points=200", "train.epochs=2",
                                                   "model.network.hidden_dims=[16]"])
    run = train(config, tmp_path / "run")
    assert run.data().shape == (2,)
    assert (tmp_path / "run" / "vector_field.png").is_file()
    assert (tmp_path / "run" / "latent.png").is_file()
    assert not (tmp_path / "run" / "samples.png").exists()


def test_evaluate_does_not_call_the_map_objective_a_likelihood(tmp_path):
    from conftest import tiny_overrides
    from pyro_vae.evaluation.report import evaluate

    run = train(load_config(None, tiny_overrides("model.type=autoencoder", "train.epochs=1")), tmp_path / "ae")
    report = evaluate(run.model, run.data(), num_samples=3)
    assert "test_log_likelihood" not in report and "test_iwae" not in report
    assert report["test_map_objective"] == report["test_elbo"] < 0
