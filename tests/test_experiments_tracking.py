"""MLflow tracking (``train.mlflow``) against a local SQLite store: params, per-epoch metrics, evaluation
numbers, artifacts; a resumed run continues its MLflow run."""

from __future__ import annotations

import json

import pytest

from conftest import tiny_overrides
from pyro_vae.run import load_run, resume, train

mlflow = pytest.importorskip("mlflow")


def test_mlflow_logs_a_run_and_resume_continues_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's artifact folder lands here, never in the repository
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = tmp_path / "run"
    seen = []

    def record(run, metrics):
        seen.append(metrics.epoch)

    train(None, out, tiny_overrides("train.epochs=1", "train.mlflow=true"), on_epoch_end=[record])
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    resume(out, ["train.epochs=2"], on_epoch_end=[record])
    assert seen == [1, 2]
    assert json.loads((out / "mlflow.json").read_text())["run_id"] == run_id
    load_run(out).evaluate(num_samples=3)
    client = mlflow.tracking.MlflowClient()
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["model.latent_dim"] == "2" and logged.data.params["train.mlflow"] == "True"
    assert [m.step for m in client.get_metric_history(run_id, "test_elbo")] == [1, 2]
    assert "eval/test_log_likelihood" in logged.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "samples.png", "elbo.png"} <= artifacts


def test_mlflow_missing_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    from pyro_vae.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    for command in (["sweep", "seed=0,1"], ["train"]):
        assert main([*command, "train.mlflow=true", "--out", str(tmp_path / "s")]) == 2
        assert "train.mlflow: needs the mlflow package" in capsys.readouterr().err
        assert not (tmp_path / "s").exists()  # before any run folder is made
