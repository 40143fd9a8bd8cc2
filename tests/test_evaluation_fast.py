"""Importance-sampled evaluation through the speed layer's one pass: the same numbers as Pyro's traces on the
same seed (VAE, VampPrior, flow prior, conditional CVAEs, full-covariance and IAF guides), the trace-based
fall-back for programs the one pass does not cover (GMVAE), and the chunked reduction equal to the unchunked
one."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from conftest import tiny_overrides

from pyro_vae import load_config
from pyro_vae.data import load_data
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.evaluation.loglik import ImportanceWeights, log_likelihood_batch
from pyro_vae.fast import log_weights as fast_log_weights
from pyro_vae.evaluation.loglik import test_log_likelihood as held_out_log_likelihood
from pyro_vae.infer.importance import log_weights
from pyro_vae.models import build_model

CASES = {
    "vae": [],
    "vamp": ["model.prior=vamp", "model.prior.num_components=5"],
    "flow": ["model.prior=flow", "model.prior.hidden_dims=[8]"],
    "cvae-label": ["model.type=cvae", "model.condition=label"],
    "cvae-quadrants": ["model.type=cvae", "model.condition=quadrants", "model.prior=conditional"],
    "gmvae": ["model.type=gmvae", "train.objective.type=enum"],
    "full-covariance-guide": ["model.guide=full_covariance"],
    "iaf-guide": ["model.guide=iaf"],
}


def setup(case: str):
    config = load_config(None, tiny_overrides("data.limit=200", *CASES[case]))
    data = load_data(config.data, config.seed)
    torch.manual_seed(0)
    model = build_model(config.model, data.shape, data.num_classes).eval()
    return model, data


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_pass_weights_equal_the_traces(case):
    model, data = setup(case)
    x, y = data.test_x[:20], data.test_y[:20]
    fast, traced = ImportanceWeights(model), ImportanceWeights(model, one_pass=False)
    pyro.set_rng_seed(1)
    log_w, rec = fast(x, y, 6)
    pyro.set_rng_seed(1)
    lw = log_weights(model.model, model.guide, x, y, num_samples=6, max_plate_nesting=model.max_plate_nesting)
    pyro.set_rng_seed(1)
    t_log_w, t_rec = traced(x, y, 6)
    assert fast.fused is (case != "gmvae")  # the GMVAE's y is a latent the guide lacks: Pyro's traces
    assert log_w.shape == (6, 20) and torch.allclose(log_w, lw.total, rtol=1e-5, atol=1e-4)
    assert torch.allclose(log_w, t_log_w, rtol=1e-5, atol=1e-4) and torch.allclose(rec, t_rec, rtol=1e-5, atol=1e-4)
    # the report's numbers, one pass vs traces on the same seed
    pyro.set_rng_seed(2)
    new = held_out_log_likelihood(model, data, num_samples=9, batch_size=50)
    pyro.set_rng_seed(2)
    old = [log_likelihood_batch(model, xb, yb, 9, weights=ImportanceWeights(model, one_pass=False))
           for xb, yb in data.batches("test", 50)]
    for field in ("log_px", "reconstruction", "kl"):
        assert torch.allclose(getattr(new, field), torch.cat([getattr(o, field) for o in old]), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", ["vae", "cvae-label"])
def test_elbo_and_iwae_equal_the_trace_based_formula(case):
    """The bounds as elbo_and_iwae computed them before (all K at once from Pyro's traces), on the same seed."""
    model, data = setup(case)
    pyro.set_rng_seed(3)
    new = elbo_and_iwae(model, data, num_samples=8, batch_size=64)
    pyro.set_rng_seed(3)
    elbo = iwae = 0.0
    for x, y in data.batches("test", 64):
        lw = log_weights(model.model, model.guide, x, y, num_samples=8, max_plate_nesting=1).total
        elbo += lw.mean(0).sum().item()
        iwae += (torch.logsumexp(lw, 0) - math.log(8)).sum().item()
    n = data.test_x.shape[0]
    assert new["elbo"] == pytest.approx(elbo / n, rel=1e-5) and new["iwae"] == pytest.approx(iwae / n, rel=1e-5)


class Recorder(ImportanceWeights):
    """Keeps every chunk's log weights and log p(x|z)."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.chunks = []

    def __call__(self, x, y, k):
        out = super().__call__(x, y, k)
        self.chunks.append(out)
        return out


def test_chunked_equals_unchunked_on_the_same_draws():
    model, data = setup("vae")
    x = data.test_x[:30]
    weights = Recorder(model)
    chunked = log_likelihood_batch(model, x, None, num_samples=50, chunk_size=7, weights=weights)  # last one partial
    assert [w.shape[0] for w, _ in weights.chunks] == [7] * 7 + [1]
    log_w = torch.cat([w for w, _ in weights.chunks])
    rec = torch.cat([r for _, r in weights.chunks])
    assert torch.allclose(chunked.log_px, torch.logsumexp(log_w, 0) - math.log(50), rtol=1e-6, atol=1e-5)
    assert torch.allclose(chunked.elbo, log_w.mean(0), rtol=1e-6, atol=1e-5)
    assert torch.allclose(chunked.reconstruction, rec.mean(0), rtol=1e-6, atol=1e-5)
    # the same K in one chunk agrees within Monte-Carlo error (different draws)
    whole = log_likelihood_batch(model, x, None, num_samples=50, chunk_size=50)
    assert abs(float(whole.log_px.mean() - chunked.log_px.mean())) < 0.5


def test_elbo_and_iwae_chunks_any_k():
    """elbo_and_iwae streams K in chunks: K larger than one pass allows still gives ELBO ≤ IWAE."""
    model, data = setup("vae")
    small = elbo_and_iwae(model, data, num_samples=40, batch_size=64, chunk_size=16)
    assert math.isfinite(small["iwae"]) and small["elbo"] <= small["iwae"]


def test_the_fall_back_to_pyros_traces_is_said_once():
    """fast.log_weights, evaluation's one entry: a program the one pass does not cover is scored from Pyro's
    traces, and the switch is said in one line, once."""
    model, data = setup("gmvae")
    lines = []
    weights = fast_log_weights(model, notify=lines.append)
    x = data.test_x[:5]
    for _ in range(2):
        log_w, rec = weights(x, None, 3)
        assert log_w.shape == rec.shape == (3, 5)
    assert weights.fused is False and len(lines) == 1 and lines[0].startswith("pyro-vae: fast path off (")
