"""The training callbacks: what Trainer.fit calls when, and the run folder's recorders in their order."""

import json
import os
import signal

import pytest

from conftest import tiny_overrides
from pyro_vae import load_config, train
from pyro_vae.data import load_data
from pyro_vae.models import build_model
from pyro_vae.train import Trainer
from pyro_vae.train.callbacks import Callback, Callbacks
from pyro_vae.train.signals import Interrupted


class Log(Callback):
    """Records each event as (name, event, detail)."""

    def __init__(self, name, events):
        self.name, self.events = name, events

    def on_epoch_end(self, trainer, metrics):
        self.events.append((self.name, "epoch", metrics.epoch))

    def on_phase_end(self, trainer, phase):
        self.events.append((self.name, "phase", phase))

    def on_interrupt(self, trainer, error):
        self.events.append((self.name, "interrupt", trainer.step))


def tiny_trainer(*extra):
    config = load_config(None, tiny_overrides("data.limit=300", *extra))
    data = load_data(config.data, config.seed)
    return Trainer(build_model(config.model, data.shape), data, config.train, seed=config.seed)


def test_fit_calls_each_epoch_then_the_phase_end_in_order():
    events = []
    tiny_trainer().fit(Callbacks([Log("a", events), Log("b", events)]))
    assert events == [("a", "epoch", 1), ("b", "epoch", 1), ("a", "epoch", 2), ("b", "epoch", 2),
                      ("a", "phase", "main"), ("b", "phase", "main")]


def test_a_stop_signal_calls_on_interrupt_and_ends_no_phase(hook_step):
    events = []
    hook_step(3, lambda engine, loss: os.kill(os.getpid(), signal.SIGINT) or loss)
    with pytest.raises(Interrupted):
        tiny_trainer().fit([Log("a", events)])
    assert events == [("a", "interrupt", 3)]


def test_the_run_folder_is_written_before_the_users_function_sees_the_epoch(tmp_path, monkeypatch):
    """checkpoint first, then the metrics row, then the user's f(run, metrics)."""
    seen = []

    def look(run, metrics):
        rows = (run.path / "metrics.jsonl").read_text().splitlines()
        seen.append((metrics.epoch, len(rows), json.loads(rows[-1])["epoch"], (run.path / "model.pt").is_file()))

    monkeypatch.setattr("pyro_vae.run.Run.write_pictures", lambda self: None)
    train(load_config(None, tiny_overrides("data.limit=300")), tmp_path / "run", on_epoch_end=[look])
    assert seen == [(1, 1, 1, True), (2, 2, 2, True)]
