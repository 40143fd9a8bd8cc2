"""Bits per dimension: −log p(x) / (D ln 2) beside the bounds, for likelihoods over discrete levels only."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import tiny_overrides
from pyro_vae.cli import main
from pyro_vae.data.quadrants import visible_quadrants
from pyro_vae.evaluation.bits import bits_per_dim, coded_dims
from pyro_vae.run import Run, train

KEYS = ("test_elbo", "test_iwae", "test_log_likelihood")
GREY = ["data.binarize=none"]  # the 8x8 digits as k/16: 17 grey levels


@pytest.fixture(autouse=True)
def _no_pictures(monkeypatch):
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)


def run(tmp_path, *overrides):
    return train(None, tmp_path / "run", tiny_overrides("train.epochs=1", *overrides))


def test_hand_formula_for_the_categorical_baseline(tmp_path):
    """The baseline has no latent, so log p(x|c) is exact: Σ over the 32 hidden pixels of log softmax(ℓ(c)) at
    the level of x; bits/dim = −mean log p(x|c) / (32 ln 2) for all three bounds, and per epoch in metrics.jsonl."""
    r = run(tmp_path, "model.type=baseline", "model.condition=quadrants", "model.visible=2",
            "model.likelihood.type=categorical", "model.likelihood.levels=17", *GREY)
    report = r.evaluate(num_samples=2)
    x = r.data().test_x
    hidden = ~visible_quadrants(x.shape[1:], 2)
    with torch.no_grad():
        logits = r.model.predict(x[:, ~hidden])  # (N, 17, 1, 8, 8)
    level = (x * 16).round().long().unsqueeze(1)
    log_px = (logits.log_softmax(1).gather(1, level).squeeze(1) * hidden).sum((1, 2, 3))
    by_hand = -float(log_px.mean()) / (32 * math.log(2))
    assert report["scored_dims"] == 32 == r.model.scored_dims()
    for key in KEYS:
        assert report[f"{key}_bits_per_dim"] == pytest.approx(by_hand, rel=1e-5)
    assert r.history[-1]["test_bits_per_dim"] == pytest.approx(-r.history[-1]["test_elbo"] / (32 * math.log(2)))


def test_discretized_logistic_vae_reports_bits_for_every_bound(tmp_path, capsys):
    r = run(tmp_path, "model.likelihood.type=discretized_logistic", "model.likelihood.levels=17", *GREY)
    assert main(["evaluate", str(r.path), "--num-samples", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scored_dims"] == 64
    for key in KEYS:
        assert report[f"{key}_bits_per_dim"] == pytest.approx(-report[key] / (64 * math.log(2)))
    assert report["test_elbo_bits_per_dim"] >= report["test_iwae_bits_per_dim"] > 0
    assert r.history[-1]["test_bits_per_dim"] == pytest.approx(-r.history[-1]["test_elbo"] / (64 * math.log(2)))


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
def test_not_reported_for_continuous_likelihoods(tmp_path, likelihood):
    r = run(tmp_path, f"model.likelihood.type={likelihood}", *GREY)
    report = r.evaluate(num_samples=2)
    assert "scored_dims" not in report and not any(k.endswith("_bits_per_dim") for k in report)
    assert r.history[-1]["test_bits_per_dim"] is None


def test_bernoulli_counts_on_binary_data_only(tmp_path):
    """Bernoulli is a mass on {0, 1}: bits/dim on binarized pixels, none for grey values (soft targets)."""
    binary = run(tmp_path / "b").evaluate(num_samples=2)
    assert binary["test_log_likelihood_bits_per_dim"] == pytest.approx(-binary["test_log_likelihood"] / (64 * math.log(2)))
    grey = run(tmp_path / "g", *GREY).evaluate(num_samples=2)
    assert "test_elbo_bits_per_dim" not in grey


def test_no_bits_for_a_map_objective(tmp_path):
    r = run(tmp_path, "model.type=autoencoder")
    report = r.evaluate(num_samples=2)
    assert "test_map_objective" in report and "test_elbo_bits_per_dim" not in report
    assert coded_dims(r.model, [r.data().test_x]) is None


def test_bits_per_dim_formula():
    assert bits_per_dim(-64 * math.log(2), 64) == pytest.approx(1.0)
    assert bits_per_dim(-100.0, 784) == pytest.approx(100 / (784 * math.log(2)))


def test_train_prints_bits_per_dim_for_discrete_likelihoods_only(tmp_path, capsys):
    assert main(["train", *tiny_overrides("train.epochs=1"), "--out", str(tmp_path / "b")]) == 0
    assert "bits/dim" in capsys.readouterr().out
    assert main(["train", *tiny_overrides("train.epochs=1", "model.likelihood=gaussian", *GREY),
                 "--out", str(tmp_path / "g")]) == 0
    assert "bits/dim" not in capsys.readouterr().out
