"""The intra-op thread policy (``train.threads``): CPUs available, the auto rule, the user's choice winning,
the child processes' environment, and the count recorded in a run."""

import json
import os

import pyro
import pytest
import torch
from torch import nn

from conftest import tiny_overrides
from pyro_vae import load_config, load_run, train
from pyro_vae import threads
from pyro_vae.threads import WORK_PER_THREAD, available_cpus, choose_threads


@pytest.fixture
def no_user_choice(monkeypatch):
    """As if the user had set neither OMP_NUM_THREADS nor torch.set_num_threads (torch back at its default)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "user_choice", lambda: None)


def test_cgroup_quota_caps_the_cpus(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: rounds up to 1
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == affinity
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1: 1 CPU
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1: unlimited
    assert available_cpus(tmp_path) == affinity


@pytest.mark.parametrize("work, cpus, busy, expected", [
    (1e6, 8, 0.0, 1),                      # a small network: 1 thread, whatever is free
    (3.5 * WORK_PER_THREAD, 8, 0.0, 4),     # ⌈3.5⌉ threads
    (100 * WORK_PER_THREAD, 8, 0.0, 8),     # never more than the CPUs
    (100 * WORK_PER_THREAD, 8, 6.2, 2),     # nor more than the free ones
    (100 * WORK_PER_THREAD, 2, 2.0, 1),     # every CPU busy: still 1
])
def test_auto_rule(work, cpus, busy, expected):
    assert choose_threads(work, cpus, busy) == expected


def test_busy_cpus_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 ...\n")  # unchanged between the samples: no time passed
    assert threads.busy_cpus(0.0, stat) == 0.0
    assert threads._cpu_times(stat) == (200, 1000)


def test_user_choice_wins_over_auto(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.resolve("auto", 1e12)[1] == "set by OMP_NUM_THREADS"
    monkeypatch.delenv("OMP_NUM_THREADS")
    before = torch.get_num_threads()
    chosen = threads.torch_default() + 1  # not the count torch started with, whatever earlier tests left
    try:
        torch.set_num_threads(chosen)
        assert threads.resolve("auto", 1.0) == (chosen, "set by torch.set_num_threads")
    finally:
        torch.set_num_threads(before)
    assert threads.resolve(3, 1.0) == (3, "train.threads")  # the config's explicit count wins over everything


def test_using_threads_puts_back_the_callers_count():
    before = torch.get_num_threads()
    with threads.using_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


def test_child_env_sets_every_thread_pool():
    env = threads.child_env(2, {"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env["PATH"] == "/bin" and all(env[key] == "2" for key in threads.THREAD_ENV)
    assert threads.split_threads(3, cpus=8) == 2 and threads.split_threads(4, cpus=2) == 1


def test_multiply_adds_of_an_mlp_leave_random_streams_and_param_store_alone():
    from pyro_vae.models import build_model

    config = load_config(None, tiny_overrides())
    model = build_model(config.model, (1, 8, 8), 10)
    x = torch.rand(1, 1, 8, 8)
    store = pyro.get_param_store()
    names = list(store.keys())
    torch.manual_seed(3)
    counted = threads.multiply_adds(model, x)
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3)) and list(store.keys()) == names
    # reconstruct runs every Linear layer of the encoder and decoder once per datapoint: Σ in·out
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    assert counted == linear
    assert model.training


def test_a_run_records_its_threads(tmp_path, no_user_choice):
    before = torch.get_num_threads()
    run = train(load_config(None, tiny_overrides("train.epochs=1", "train.threads=2")), tmp_path / "two")
    assert torch.get_num_threads() == before  # the caller's count is put back
    rows = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["threads"] for r in rows] == [2] == [r["threads"] for r in run.history]
    assert torch.load(tmp_path / "two" / "model.pt", weights_only=True)["threads"] == 2
    auto = train(load_config(None, tiny_overrides("train.epochs=1")), tmp_path / "auto")
    assert auto.history[-1]["threads"] == 1  # a network this small: 1 thread


def test_evaluate_and_sample_use_the_runs_policy(tmp_path, monkeypatch, no_user_choice):
    train(load_config(None, tiny_overrides("train.epochs=1", "train.threads=2")), tmp_path / "run")
    seen = []
    apply = threads.apply
    monkeypatch.setattr(threads, "apply", lambda n: seen.append(n) or apply(n))
    run = load_run(tmp_path / "run")
    run.sample(4)
    run.evaluate(num_samples=2)
    assert seen[0::2] == [2, 2]  # set for the pass, then put back


def test_bad_threads_value_is_one_line(tmp_path, capsys):
    from pyro_vae.cli import main

    assert main(["train", *tiny_overrides("train.threads=0"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.threads" in err and "'auto' or an integer >= 1" in err


def test_the_choice_is_said_once_above_the_progress_bar(tmp_path, capsys, no_user_choice):
    train(load_config(None, tiny_overrides("train.epochs=2", "train.progress=true")), tmp_path / "run")
    err = capsys.readouterr().err
    assert err.count("CPU thread") == 1 and "pyro-vae: 1 CPU thread (auto: " in err


class _ThreadsSeen(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS")


def test_dataloader_workers_start_with_one_thread():
    loader = torch.utils.data.DataLoader(_ThreadsSeen(), batch_size=None, num_workers=1,
                                         worker_init_fn=threads.worker_init_fn)
    assert [tuple(item) for item in loader] == [(1, "1", "1")]


class _ConvPair(nn.Module):
    """3×3 convolution to 4 channels and back, padding 1, on 8×8 images."""

    def __init__(self):
        super().__init__()
        self.down, self.up = nn.Conv2d(1, 4, 3, padding=1), nn.ConvTranspose2d(4, 1, 3, padding=1)

    def reconstruct(self, x, y=None):
        return self.up(self.down(x))


def test_multiply_adds_of_convolutions():
    model = _ConvPair()
    # each of the 4·8·8 outputs of `down` sums 1·3·3 products; each of the 4·8·8 inputs of `up` feeds 1·3·3
    assert threads.multiply_adds(model, torch.zeros(1, 1, 8, 8)) == 2 * 4 * 8 * 8 * 9
    assert threads.multiply_adds(model, None) == 2 * 4 * 9  # no datapoint: the weights' sizes
