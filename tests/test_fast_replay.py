"""Replay (pyro_vae.fast.replay): recorded graphs give the eager program's numbers, and refuse what they can't."""

from __future__ import annotations

import pyro
import pytest
import torch
from torch import nn

from conftest import tiny_overrides
from pyro_vae import load_config
from pyro_vae.config.schema import from_dict
from pyro_vae.data import load_data
from pyro_vae.models import build_model
from pyro_vae.fast.replay import ReplayedLoss
from pyro_vae.train import factory as engines
from pyro_vae.train.config import TrainConfig


def _engine(replay: bool, objective: str = "elbo", **options):
    config = load_config(None, tiny_overrides())
    data = load_data(config.data, config.seed)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    model = build_model(config.model, data.shape, data.num_classes)
    cfg = from_dict(TrainConfig, {"objective": {"type": objective, **options}, "batch_size": 32, "replay": replay})
    return model, data, engines.build_engine(model, cfg)


WEIGHTED = {"beta": 0.5, "warmup_steps": 3, "free_bits": 0.1}


@pytest.mark.parametrize("objective,options", [("elbo", {}), ("meanfield", {}), ("elbo", WEIGHTED),
                                               ("meanfield", WEIGHTED)])
def test_replayed_steps_equal_eager_steps_bit_for_bit(objective, options):
    """Same seed: every loss and every final weight identical with and without replay, across two batch shapes
    (with β, KL warm-up and free bits too: the warm-up weight is an input of the recorded graph)."""
    runs = []
    for replay in (False, True):
        model, data, eng = _engine(replay, objective, **options)
        batches = data.batches("train", 300, shuffle=True, generator=torch.Generator().manual_seed(1))
        losses = [eng.step(x, y) for _ in range(2) for x, y in batches]  # 300, ..., a smaller last batch, twice
        runs.append((losses, [p.detach().clone() for p in model.parameters()], eng))
    (eager, w_eager, e_eng), (replayed, w_replayed, r_eng) = runs
    assert e_eng.loss.replay is None and r_eng.loss.replay.disabled is None
    assert e_eng.describe()["path"] == "one-pass" and r_eng.describe()["path"] == "replay"
    assert len(r_eng.loss.replay.graphs) == 2  # the full and the last, smaller minibatch
    assert replayed == eager
    assert all(torch.equal(a, b) for a, b in zip(w_eager, w_replayed))


OUTSIDE = nn.Parameter(torch.tensor(2.0))  # trainable, but not a parameter of the module (like a pyro.param)


class Loss(nn.Module):
    """A small differentiable loss with a parameter and a buffer; ``mode`` picks a misbehaviour."""

    def __init__(self, mode: str = "ok"):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5, -1.0]))
        self.register_buffer("shift", torch.tensor(0.1))
        self.mode, self.calls = mode, 0

    def forward(self, x, y=None):
        self.calls += 1
        out = ((x * self.w).sum(-1) + self.shift + torch.randn(x.shape[0])).square().sum()
        if self.mode == "reads-values" and out > 0:  # Python control flow on a tensor value
            out = out * 2
        if self.mode == "captures-parameter":
            out = out * OUTSIDE
        if self.mode == "stateful":  # Python state baked into a recording
            out = out * self.calls
        return out


def test_replay_of_a_well_behaved_program():
    loss = Loss()
    replayed = ReplayedLoss(loss)
    x = torch.randn(5, 2)
    torch.manual_seed(0)
    first = replayed(x)  # records, checks against eager and returns the replayed value
    assert replayed.disabled is None and len(replayed.graphs) == 1
    torch.manual_seed(1)
    again = replayed(x)
    torch.manual_seed(1)
    eager = loss(x)
    assert torch.equal(again, eager) and first.requires_grad
    (g_r,) = torch.autograd.grad(again, [loss.w])
    (g_e,) = torch.autograd.grad(eager, [loss.w])
    assert torch.equal(g_r, g_e)
    with torch.no_grad():
        loss.shift.fill_(5.0)  # buffers are graph inputs: an in-place change is seen
        torch.manual_seed(2)
        a = replayed(x)
        torch.manual_seed(2)
        assert torch.equal(a, loss(x))


@pytest.mark.parametrize("mode,reason", [("reads-values", "not recorded"),
                                         ("captures-parameter", "not recorded"),
                                         ("stateful", "differs from the eager program")])
def test_replay_refuses_what_it_cannot_reproduce(mode, reason):
    loss = Loss(mode)
    replayed = ReplayedLoss(loss)
    x = torch.randn(5, 2)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    value = replayed(x)  # falls back: the eager value, on the eager random stream
    assert replayed.disabled is not None and reason in replayed.disabled and not replayed.graphs
    assert torch.isfinite(value)
    torch.manual_seed(0)
    loss.calls = 0
    assert torch.equal(torch.get_rng_state(), state)


def test_engine_replays_only_one_pass_objectives():
    _, data, eng = _engine(True, "elbo")
    assert eng.describe()["reason"] == "not recorded yet"  # nothing ran: the one pass has not run yet
    x, y = next(iter(data.batches("train", 32, shuffle=False)))
    eng.step(x, y)
    assert not eng.loss.replay.graphs  # the first step runs eagerly (validated)
    for _ in range(2):
        eng.step(x, y)
    assert eng.describe() == {"path": "replay", "reason": "1 recorded graph(s)", "elbo": "Trace_ELBO"}
    config = from_dict(TrainConfig, {"objective": {"type": "elbo", "fused": False}})
    model, _, _ = _engine(True)
    unfused = engines.build_engine(model, config)
    for _ in range(3):
        unfused.step(x, y)
    assert unfused.loss.replay is None
    assert unfused.describe() == {"path": "pyro", "reason": "train.objective.fused=false", "elbo": "Trace_ELBO"}


CASES = [("vae", []), ("vae", ["model.prior.type=gmm"]), ("vae", ["model.prior.type=vamp"]),
         ("vae", ["model.prior.type=flow"]), ("vae", ["model.network.type=conv"]),
         ("vae", ["model.likelihood.type=gaussian", "model.likelihood.learn=per_dim"]),
         ("cvae", []), ("autoencoder", []), ("denoising", ["model.corruption=mask"]), ("sparse", []),
         ("contractive", [])]


@pytest.mark.parametrize("model_type,extra", CASES, ids=[f"{m}{'-' + e[0] if e else ''}" for m, e in CASES])
def test_every_model_replays_with_the_same_steps(model_type, extra):
    """Every registered model, and a spread of priors, networks and likelihoods, is recorded, and takes the
    same steps (losses and weights) replayed as eager."""
    runs = []
    for replay in (False, True):
        config = load_config(None, tiny_overrides(f"model.type={model_type}", *extra))
        data = load_data(config.data, config.seed)
        pyro.set_rng_seed(0)
        pyro.clear_param_store()
        model = build_model(config.model, data.shape, data.num_classes)
        cfg = from_dict(TrainConfig, {"batch_size": 32, "replay": replay})
        eng = engines.build_engine(model, cfg)
        batches = data.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(1))
        losses = [eng.step(x, y) for (x, y), _ in zip(batches, range(5))]
        runs.append((losses, [p.detach().clone() for p in model.parameters()], eng))
    (eager, w_eager, _), (replayed, w_replayed, eng) = runs
    assert replayed == pytest.approx(eager, rel=1e-6, abs=1e-4)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(w_eager, w_replayed))
    assert eng.loss.fused and not eng.loss.replay.disabled and len(eng.loss.replay.graphs) == 1, eng.describe()


class Shared(nn.Module):
    """One submodule registered under two names (as Pyro's spline transforms hold their network twice), and a
    program replay cannot record (its control flow reads a tensor value)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 1)
        self.again = self.net

    def forward(self, x, y=None):
        out = self.again(x).square().sum()
        return out * 2 if out > 0 else out


def test_a_failed_recording_leaves_the_module_its_own_tensors():
    loss = Shared()
    before = [(n, p) for n, p in loss.named_parameters(remove_duplicate=False)]
    replayed = ReplayedLoss(loss)
    x = torch.randn(4, 2)
    value = replayed(x)
    assert replayed.disabled is not None and "not recorded" in replayed.disabled
    assert all(p is q for (_, p), (_, q) in zip(before, loss.named_parameters(remove_duplicate=False)))
    assert torch.equal(value, loss(x))


def test_spline_flow_prior_trains_with_the_default_engine():
    """A spline-autoregressive flow prior (its module is registered twice, its bins are searched) trains under
    the default engine: recorded where it can be, else eager, never an error."""
    config = load_config(None, tiny_overrides("model.prior.type=flow", "model.prior.transform=spline_autoregressive"))
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape, data.num_classes)
    eng = engines.build_engine(model, from_dict(TrainConfig, {"batch_size": 32}))
    batches = data.batches("train", 32, shuffle=False)
    losses = [eng.step(x, y) for (x, y), _ in zip(batches, range(3))]
    assert all(torch.isfinite(torch.tensor(v)) for v in losses)
    assert eng.describe()["path"] in ("replay", "one-pass"), eng.describe()
    assert all(type(p) is nn.Parameter for p in model.parameters())


class OneHotModel(nn.Module):
    """A conditional toy whose model reads label values (``F.one_hot`` without ``num_classes``)."""

    max_plate_nesting = 1

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(3, 2)

    def model(self, x, y=None):
        pyro.module("toy", self)
        c = torch.nn.functional.one_hot(y).float()
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", pyro.distributions.Normal(self.w(c), 1.0).to_event(1))
            pyro.sample("x", pyro.distributions.Normal(z, 1.0).to_event(1), obs=x)

    def guide(self, x, y=None):
        pyro.module("toy", self)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", pyro.distributions.Normal(x, 1.0).to_event(1))


def test_value_reading_models_fall_back_to_eager_and_say_so_once():
    from pyro_vae.fast import compile_loss

    model = OneHotModel()
    notes = []
    loss = compile_loss(model, from_dict(TrainConfig, {}).objective, notify=notes.append)
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    values = [loss.loss(x, y) for _ in range(4)]
    assert all(torch.isfinite(v) for v in values)
    described = loss.describe()
    assert described["path"] == "one-pass" and described["reason"].startswith("replay off: not recorded"), described
    assert len(notes) == 1 and notes[0].startswith("pyro-vae: replay off: not recorded") and "eagerly" in notes[0]
