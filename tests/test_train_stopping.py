"""``train.early_stopping``: the levelling-off rule, the trainer stopping on it, ``--resume`` and sweeps agreeing."""

from __future__ import annotations

import json

import pytest

from pyro_vae import load_config, resume, train
from pyro_vae.config.train import EarlyStoppingConfig
from pyro_vae.errors import ConfigError, RunDirError
from pyro_vae.experiments.grid import build
from pyro_vae.experiments.runner import plan
from pyro_vae.run import Run
from pyro_vae.train.stopping import best_epoch, levelled_off, stopped_early

from conftest import tiny_overrides


@pytest.mark.parametrize("values, patience, min_delta, expected", [
    ([-5.0, -4.0, -3.0], 1, 0.0, False),          # still rising
    ([-5.0, -4.0, -4.5], 1, 0.0, True),           # the last epoch fell below the best before it
    ([-5.0, -4.0, -3.9], 1, 0.5, True),           # rose, by less than min_delta
    ([-5.0, -4.0, -4.5, -3.0], 2, 0.0, False),    # a new best inside the window
    ([-5.0, -4.0, -4.5, -4.2], 2, 0.0, True),     # two epochs without one
    ([-5.0, -6.0], 2, 0.0, False),                # not more values than the patience
    ([-5.0, -6.0, -7.0], None, 0.0, False),       # off
])
def test_levelled_off(values, patience, min_delta, expected):
    assert levelled_off(values, patience, min_delta) is expected


def test_rule_reads_the_monitored_bound_and_best_epoch():
    rows = [{"epoch": 1, "test_elbo": -9.0, "test_iwae": -8.0}, {"epoch": 2, "test_elbo": -8.0, "test_iwae": -7.9},
            {"epoch": 3, "test_elbo": -8.5, "test_iwae": -7.5}]
    assert stopped_early(rows, EarlyStoppingConfig(patience=1, monitor="elbo"))
    assert not stopped_early(rows, EarlyStoppingConfig(patience=1, monitor="iwae"))
    assert best_epoch(rows, EarlyStoppingConfig(monitor="elbo")) == 2
    assert best_epoch(rows, EarlyStoppingConfig(monitor="iwae")) == 3
    assert not stopped_early([{"epoch": 1, "test_elbo": -1.0}] * 3, EarlyStoppingConfig(patience=1, monitor="iwae"))


def test_bad_patience_is_one_line():
    with pytest.raises(ConfigError, match="train.early_stopping.patience"):
        load_config(None, ["train.early_stopping.patience=0"])
    with pytest.raises(ConfigError, match="train.early_stopping.monitor"):
        load_config(None, ["train.early_stopping.monitor=loss"])


STOP = ["data.limit=300", "train.epochs=10", "train.early_stopping.patience=1", "train.early_stopping.min_delta=1e9"]


@pytest.fixture
def stopped(tmp_path, monkeypatch):
    """A run whose bound can never rise by min_delta = 1e9: it stops after epoch 2 of 10."""
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    return train(load_config(None, tiny_overrides(*STOP)), tmp_path / "run"), tmp_path / "run"


def test_trainer_stops_when_levelled_off_and_records_the_iwae_bound(stopped):
    run, folder = stopped
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] == [r["epoch"] for r in run.history]
    assert all(r["test_iwae"] >= r["test_elbo"] for r in rows)  # log mean w ≥ mean log w (Jensen)


def test_resume_refuses_a_stopped_run_and_continues_with_more_patience(stopped, monkeypatch):
    _, folder = stopped
    with pytest.raises(RunDirError, match="levelled off.*train.early_stopping.patience"):
        resume(folder)
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    run = resume(folder, ["train.early_stopping.patience=null", "train.epochs=3"])
    assert [r["epoch"] for r in run.history] == [1, 2, 3]


def test_a_sweep_does_not_resume_a_run_that_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)
    grid = build(None, tiny_overrides(*STOP, "seed=0,1"))
    for cell in grid:
        train(cell.config, tmp_path / cell.name)
    assert [job.mode for job in plan(tmp_path, grid)] == ["evaluate", "evaluate"]  # no result.json yet: evaluated
