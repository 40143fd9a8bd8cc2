"""The speed layer's self-check (pyro_vae.fast.selfcheck): it passes on the installed versions, is cached per
(torch, pyro-ppl) pair, and a missing private name or a wrong kernel result makes runs fall back to Pyro's ELBO,
said in one line and recorded in the run."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_overrides
from pyro_vae import load_config, train
from pyro_vae.fast import compat, selfcheck
from pyro_vae.fast.loss import compile_loss


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Each test starts with no verdict, in memory or on disk."""
    monkeypatch.setenv("PYRO_VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(selfcheck, "_verdicts", {})


def test_installed_versions_pass_and_the_verdict_is_cached(monkeypatch):
    assert selfcheck.verdict(compile_loss) is None
    cached = json.loads(selfcheck.cache_path().read_text())
    assert cached == {selfcheck.versions(): None}
    monkeypatch.setattr(selfcheck, "_verdicts", {})
    monkeypatch.setattr(selfcheck, "run_check", lambda: pytest.fail("checked again despite the cache"))
    assert selfcheck.verdict(compile_loss) is None


def test_the_check_leaves_the_param_store_and_random_streams_alone():
    import pyro

    mine = pyro.param("vae$$$encoder.weight", torch.ones(3))  # a name the tiny VAE's own parameters would take
    names = list(pyro.get_param_store().keys())
    torch.manual_seed(7)
    assert selfcheck.run_check(compile_loss) is None
    after = torch.rand(2)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(2))
    assert list(pyro.get_param_store().keys()) == names and pyro.param("vae$$$encoder.weight") is mine


def wrong_gaussian_kernel(monkeypatch):
    """The Gaussian sample kernel's ε 1% off the noise Pyro draws (as a changed private helper would make it)."""
    right = compat.standard_normal
    monkeypatch.setattr(compat, "standard_normal", lambda shape, like: right(shape, like) * 1.01)


def test_wrong_kernel_result_fails_the_check(monkeypatch):
    wrong_gaussian_kernel(monkeypatch)
    reason = selfcheck.verdict(compile_loss)
    assert reason is not None and "differs from Pyro's Trace_ELBO" in reason
    assert json.loads(selfcheck.cache_path().read_text()) == {selfcheck.versions(): reason}


def _fall_back_run(tmp_path, capsys):
    run = train(load_config(None, tiny_overrides("train.epochs=1")), tmp_path / "run")
    err = [line for line in capsys.readouterr().err.splitlines() if "fast path off" in line]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    return run, err, rows[-1]["engine"], payload["engine"]


def test_missing_private_name_falls_back_to_pyro(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compat, "PRIVATE_NAMES", (*compat.PRIVATE_NAMES, ("torch.Tensor", "_renamed_in_a_release")))
    assert compat.missing_names() == ["torch.Tensor._renamed_in_a_release"]
    run, err, row, saved = _fall_back_run(tmp_path, capsys)
    assert len(err) == 1 and "torch.Tensor._renamed_in_a_release missing" in err[0]
    assert row == saved and row["path"] == "pyro" and "self-check" in row["reason"]
    assert row["elbo"] == "Trace_ELBO" and run.history[-1]["test_elbo"] < 0


def test_wrong_kernel_result_falls_back_to_pyro(tmp_path, monkeypatch, capsys):
    wrong_gaussian_kernel(monkeypatch)
    _, err, row, saved = _fall_back_run(tmp_path, capsys)
    assert len(err) == 1 and "differs from Pyro's Trace_ELBO" in err[0]
    assert row == saved and row["path"] == "pyro" and "self-check" in row["reason"]


def test_evaluation_falls_back_too(monkeypatch):
    from pyro_vae.evaluation.loglik import ImportanceWeights
    from pyro_vae.models import build_model

    model = build_model(load_config(None, tiny_overrides()).model, (1, 8, 8), 10)
    assert ImportanceWeights(model).fused is None  # trusted: the one pass is tried
    monkeypatch.setattr(selfcheck, "_verdicts", {selfcheck.versions(): "a wrong result"})
    assert ImportanceWeights(model).fused is False  # Pyro's traces


def test_a_run_that_checks_first_trains_as_one_that_reads_the_verdict(tmp_path):
    config = load_config(None, tiny_overrides("train.epochs=1"))
    checked = train(config, tmp_path / "checked")  # no verdict yet: the check runs inside this run
    assert json.loads(selfcheck.cache_path().read_text()) == {selfcheck.versions(): None}
    cached = train(config, tmp_path / "cached")
    assert checked.history[0]["engine"]["path"] == "replay"
    assert [r["train_elbo"] for r in checked.history] == [r["train_elbo"] for r in cached.history]
