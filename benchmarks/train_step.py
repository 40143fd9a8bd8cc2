"""Time one training step of pyro-vae against the same VAE written in plain PyTorch (the floor).

In one process and one run: a 784-400-50 MLP VAE (Bernoulli likelihood, N(0, I) prior) on
MNIST-shaped binary images, batch 32 / 128 / 1024. The routes take turns step by step (so load
from other jobs on a shared machine hits them alike); the reported time is the median per-step wall
time after warm-up. Also times IWAE training steps (K = 5, 50), importance-sampled evaluation (K samples
of z per test point, K = 100, 1000) and, with ``--memory``, the resident memory training steps add, per
route (each in a fresh subprocess); ``--eval-memory`` the peak memory of evaluation at several K.

    python benchmarks/train_step.py                      # the README table
    python benchmarks/train_step.py --batch-sizes 128 --steps 200 --routes floor torch svi

Routes:
  floor          plain PyTorch: same nets, −ELBO with a 1-sample Monte-Carlo KL (= Trace_ELBO), Adam
  floor-kl       plain PyTorch with the closed-form KL (= TraceMeanField_ELBO)
  torch          pyro-vae defaults: torch engine, loss from pyro_vae.fast: one-pass Trace_ELBO (objective.fused),
                 recorded graph replayed (train.replay)
  torch-meanfield    ... objective meanfield (one-pass TraceMeanField_ELBO, closed-form KL)
  torch-eager    ... train.replay=false: the one-pass ELBO run eagerly (Pyro handlers every step)
  torch-unfused  ... objective.fused=false: Pyro's Trace_ELBO.differentiable_loss (two traces per step)
  torch-validate ... objective.fused=false with Pyro/torch argument validation left on in the hot loop
  svi            train.engine=svi: SVI + Trace_ELBO + ClippedAdam (Pyro's example style)
  svi-meanfield  SVI + TraceMeanField_ELBO
  svi-jit        SVI + JitTrace_ELBO (Pyro's JIT ELBO; fixed batch shapes only)
  compile        torch.compile of the one-pass ELBO module (--routes compile: long compilation on CPU)

IWAE routes (--parts iwae, K = --iwae-k), each timed in turns with the plain-PyTorch IWAE floors:
  iwae-torch     objective iwae on the torch engine (the one-pass IWAE, replayed)
  iwae-svi       objective iwae through Pyro's SVI loop (RenyiELBO, alpha=0)
  dreg-torch     objective iwae with estimator dreg (eager one pass), against the DReG floor

Before timing, the same-objective check compares, on equal weights and noise, Pyro's ELBO with the floor and
the one-pass and replayed losses (and gradients) with Pyro's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import pyro
import pyro.infer
import pyro.optim
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_vae.config.schema import from_dict
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.evaluation.loglik import SAMPLES_PER_PASS, ImportanceWeights, log_likelihood_batch
from pyro_vae.data import ImageData
from pyro_vae.fast import compile_loss
from pyro_vae.models import VAE, VAEConfig
from pyro_vae.registry import OBJECTIVES
from pyro_vae.train.config import TrainConfig
from pyro_vae.train.factory import build_engine

SHAPE, HIDDEN, LATENT = (1, 28, 28), 400, 50
ROUTES = ["floor", "floor-kl", "torch", "torch-meanfield", "torch-eager", "torch-unfused", "torch-validate", "svi",
          "svi-meanfield", "svi-jit"]
PAIRS = {"torch": "floor", "torch-meanfield": "floor-kl", "torch-eager": "floor", "torch-unfused": "floor",
         "torch-validate": "floor", "svi": "floor", "svi-meanfield": "floor-kl", "svi-jit": "floor", "compile": "floor"}
LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0
LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- the plain-PyTorch floor
class PlainVAE(nn.Module):
    """The same VAE in plain PyTorch: −ELBO(x) = BCE(decoder(z), x) + [log q(z|x) − log p(z)] (or closed-form KL)."""

    def __init__(self, closed_form_kl: bool) -> None:
        super().__init__()
        d = math.prod(SHAPE)
        self.enc = nn.Sequential(nn.Linear(d, HIDDEN), nn.ReLU())
        self.loc, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.dec = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, d))
        self.closed_form_kl = closed_form_kl

    def copy_from(self, vae: VAE) -> "PlainVAE":
        """Take the pyro-vae model's weights (for the same-objective check)."""
        e, dcd = vae.encoder, vae.decoder
        pairs = [(self.enc[0], e.body[0]), (self.loc, e.head.loc), (self.logvar, e.head.logvar),
                 (self.dec[0], dcd.body[0]), (self.dec[2], dcd.out)]
        with torch.no_grad():
            for mine, theirs in pairs:
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        return self

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        h = self.enc(x)
        loc, logvar = self.loc(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)
        scale = torch.exp(0.5 * logvar)
        eps = torch.randn_like(loc)
        z = loc + scale * eps
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="sum")
        if self.closed_form_kl:
            kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1.0 - logvar).sum()
        else:  # log q(z|x) − log p(z) at the sample: the Monte-Carlo KL of Trace_ELBO
            kl = (-0.5 * eps.pow(2) - 0.5 * logvar + 0.5 * z.pow(2)).sum()
        return rec + kl

    def log_weights(self, x: Tensor, k: int, dreg: bool = False) -> Tensor:
        """log p(x, z_k) − log q(z_k|x), shape (K, B); ``dreg``: log q at stop-gradient q parameters, and the
        gradient reaching z_k scaled by w̃_k (a tensor hook) once the weights are known (see :meth:`iwae`)."""
        x = x.flatten(1)
        h = self.enc(x)
        loc, logvar = self.loc(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)
        scale = torch.exp(0.5 * logvar)
        eps = torch.randn(k, *loc.shape)
        z = loc + scale * eps
        log_px = -F.binary_cross_entropy_with_logits(self.dec(z), x.expand(k, *x.shape), reduction="none").sum(-1)
        if not dreg:
            return log_px + (-0.5 * z.pow(2) + 0.5 * eps.pow(2) + 0.5 * logvar).sum(-1)
        self.z = z
        eps_sg = (z - loc.detach()) / scale.detach()
        return log_px + (-0.5 * z.pow(2) + 0.5 * eps_sg.pow(2) + 0.5 * logvar.detach()).sum(-1)

    def iwae(self, x: Tensor, k: int, dreg: bool = False) -> Tensor:
        """−Σ_b [logsumexp_k log w_k − log K] (DReG: the guide's gradient Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ)."""
        log_w = self.log_weights(x, k, dreg)
        if dreg and torch.is_grad_enabled():
            w = torch.softmax(log_w.detach(), 0).unsqueeze(-1)
            self.z.register_hook(lambda g: g * w)
        return -(torch.logsumexp(log_w, 0) - math.log(k)).sum()

    @torch.no_grad()
    def bounds(self, x: Tensor, k: int, chunk: int) -> Tuple[float, float]:
        """(Σ ELBO, Σ IWAE_K) over the batch, K drawn ``chunk`` at a time with a running logaddexp."""
        log_sum, total = None, 0.0
        for start in range(0, k, chunk):
            lw = self.log_weights(x, min(chunk, k - start))
            total = total + lw.sum(0)
            lse = torch.logsumexp(lw, 0)
            log_sum = lse if log_sum is None else torch.logaddexp(log_sum, lse)
        return (total / k).sum().item(), (log_sum - math.log(k)).sum().item()


def plain_step(net: PlainVAE, lr: float) -> Callable[[Tensor], float]:
    optim = torch.optim.Adam(net.parameters(), lr=lr, fused=True)  # the fastest Adam on CPU, as in the engine

    def step(x: Tensor) -> float:
        optim.zero_grad(set_to_none=True)
        loss = net(x)
        loss.backward()
        optim.step()
        return loss.item()

    return step


# ---------------------------------------------------------------- pyro-vae routes
def vae_model() -> VAE:
    cfg = from_dict(VAEConfig, {"latent_dim": LATENT, "network": {"type": "mlp", "hidden_dims": [HIDDEN]}})
    return VAE(cfg, SHAPE)


def train_config(engine: str, objective: str, fused: bool = True, replay: bool = True) -> TrainConfig:
    return from_dict(TrainConfig, {"engine": engine, "objective": {"type": objective, "fused": fused},
                                   "replay": replay, "progress": False})


def pyro_step(engine: str, objective: str, fused: bool = True, replay: bool = True) -> Callable[[Tensor], float]:
    pyro.clear_param_store()
    model = vae_model()
    eng = build_engine(model, train_config(engine, objective, fused, replay))
    return lambda x: eng.step(x, None)


def jit_step() -> Callable[[Tensor], float]:
    pyro.clear_param_store()
    model = vae_model()

    # Pyro's JIT passes parameters into the trace through the param store: the module must take them back
    # (update_module_params=True), else its weights are baked into the trace as constants.
    def model_fn(x: Tensor) -> Tensor:
        pyro.module("vae", model, update_module_params=True)
        return model.model(x)

    def guide_fn(x: Tensor) -> Tensor:
        pyro.module("vae", model, update_module_params=True)
        return model.guide(x)

    svi = pyro.infer.SVI(model_fn, guide_fn, pyro.optim.ClippedAdam({"lr": 1e-3, "clip_norm": 10.0}),
                         loss=pyro.infer.JitTrace_ELBO(max_plate_nesting=1, ignore_jit_warnings=True))
    return lambda x: svi.step(x)  # JIT traces tensors only: y is left out


def validate_step() -> Callable[[Tensor], float]:
    pyro.clear_param_store()
    model = vae_model()
    eng = build_engine(model, train_config("torch", "elbo", fused=False))
    elbo = eng.loss.elbo
    # Pyro's Trace_ELBO.differentiable_loss as is: validation on and pyro.module registering on every step
    eng.loss_fn = lambda x, y: elbo.differentiable_loss(model.model, model.guide, x, y)
    return lambda x: eng.step(x, None)


def objective_config(objective: str, **options) -> object:
    return OBJECTIVES.get(objective).config_cls(**options)


def compile_step() -> Callable[[Tensor], float]:
    pyro.clear_param_store()
    model = vae_model()
    loss = torch.compile(compile_loss(model, objective_config("elbo"), replay=False, notify=None))
    optim = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step(x: Tensor) -> float:
        optim.zero_grad(set_to_none=True)
        with pyro.validation_enabled(False):
            value = loss(x, None)
        value.backward()
        optim.step()
        return value.item()

    return step


def iwae_floor_step(k: int, dreg: bool, lr: float = 1e-3) -> Callable[[Tensor], float]:
    net = PlainVAE(False)
    optim = torch.optim.Adam(net.parameters(), lr=lr, fused=True)

    def step(x: Tensor) -> float:
        optim.zero_grad(set_to_none=True)
        loss = net.iwae(x, k, dreg)
        loss.backward()
        optim.step()
        return loss.item()

    return step


def iwae_step(engine: str, k: int, estimator: str = "iwae") -> Callable[[Tensor], float]:
    pyro.clear_param_store()
    model = vae_model()
    config = from_dict(TrainConfig, {"engine": engine, "progress": False,
                                     "objective": {"type": "iwae", "num_particles": k, "estimator": estimator}})
    eng = build_engine(model, config)
    return lambda x: eng.step(x, None)


IWAE_ROUTES = {  # route: (build(k), the floor it is timed against)
    "iwae-floor": (lambda k: iwae_floor_step(k, False), None),
    "dreg-floor": (lambda k: iwae_floor_step(k, True), None),
    "iwae-torch": (lambda k: iwae_step("torch", k), "iwae-floor"),
    "iwae-svi": (lambda k: iwae_step("svi", k), "iwae-floor"),
    "dreg-torch": (lambda k: iwae_step("torch", k, "dreg"), "dreg-floor"),
}


def time_iwae(k: int, batch: int, steps: int, warmup: int) -> Dict[str, Dict[str, float]]:
    """As :func:`time_routes` for the IWAE objective with K = ``k``: each pyro-vae route taking turns step by step
    with the plain-PyTorch IWAE floors (standard and DReG)."""
    torch.manual_seed(0)
    floors = {r: IWAE_ROUTES[r][0](k) for r in ("iwae-floor", "dreg-floor")}
    routes = [r for r, (_, floor) in IWAE_ROUTES.items() if floor is not None]
    return {route: in_turns({**floors, route: IWAE_ROUTES[route][0](k)}, batch, steps, warmup) for route in routes}


def build_route(name: str) -> Callable[[Tensor], float]:
    if name == "floor":
        return plain_step(PlainVAE(False), 1e-3)
    if name == "floor-kl":
        return plain_step(PlainVAE(True), 1e-3)
    if name == "svi-jit":
        return jit_step()
    if name == "torch-validate":
        return validate_step()
    if name == "compile":
        return compile_step()
    if name == "torch-eager":
        return pyro_step("torch", "elbo", replay=False)
    if name == "torch-unfused":
        return pyro_step("torch", "elbo", fused=False)
    if name == "svi":
        return pyro_step("svi", "elbo")
    if name == "svi-meanfield":
        return pyro_step("svi", "meanfield")
    engine, _, objective = name.partition("-")
    return pyro_step(engine, {"": "elbo", "meanfield": "meanfield"}[objective])


# ---------------------------------------------------------------- measurements
def images(batch: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((batch, *SHAPE), 0.13), generator=g)


def time_routes(routes: List[str], batch: int, steps: int, warmup: int) -> Dict[str, Dict[str, float]]:
    """Median seconds per step of each pyro-vae route and of its floor, timed together: the route and the
    floors take turns step by step (load from other jobs hits them alike). Pyro routes are timed one after
    another because they share Pyro's global param store (and the models' ``pyro.module("vae", ...)`` name)."""
    torch.manual_seed(0)
    floors = {r: build_route(r) for r in ("floor", "floor-kl")}
    # build_route clears the param store: each route is built just before its turns
    return {route: in_turns({**floors, route: build_route(route)}, batch, steps, warmup)
            for route in routes if route not in floors}


def in_turns(steppers: Dict[str, Callable[[Tensor], float]], batch: int, steps: int,
             warmup: int) -> Dict[str, float]:
    """Median seconds per step of each stepper, the steppers taking turns step by step on the same few minibatches
    (load from other jobs hits them alike); the first ``warmup`` rounds are not timed."""
    pool = [images(batch, seed=s) for s in range(8)]  # a few different minibatches, the same for every stepper
    times: Dict[str, List[float]] = {r: [] for r in steppers}
    for i in range(warmup + steps):
        x = pool[i % len(pool)]
        for r, step in steppers.items():
            t0 = time.perf_counter()
            step(x)
            if i >= warmup:
                times[r].append(time.perf_counter() - t0)
    return {r: statistics.median(ts) for r, ts in times.items()}


def same_objective(batch: int = 128) -> Dict[str, float]:
    """On the same weights, batch and noise: relative |Pyro's ELBO − floor|, and relative |one-pass − Pyro's| and
    |replayed − Pyro's| for the loss and (max over parameters) the gradient; float round-off is ~1e-7."""
    x = images(batch, seed=1)
    model = vae_model()
    params = list(model.parameters())
    out = {}
    for objective, closed in (("elbo", False), ("meanfield", True)):
        pyro.clear_param_store()
        pyro_cls = {"elbo": pyro.infer.Trace_ELBO, "meanfield": pyro.infer.TraceMeanField_ELBO}[objective]
        elbo = pyro_cls(max_plate_nesting=1)
        one_pass = compile_loss(model, objective_config(objective), replay=False, notify=None)
        replayed = compile_loss(model, objective_config(objective), notify=None)
        with pyro.validation_enabled(False):
            for _ in range(2):  # first call eager, second records (and checks) the graph
                replayed.loss(x, None)
        assert replayed.describe()["path"] == "replay", replayed.describe()
        plain = PlainVAE(closed).copy_from(model)
        losses, grads = {}, {}
        for name, fn in (("pyro", lambda x, y: elbo.differentiable_loss(model.model, model.guide, x, y)),
                         ("one-pass", one_pass.loss), ("replay", replayed.loss), ("floor", lambda x, y: plain(x))):
            torch.manual_seed(3)
            with pyro.validation_enabled(False):
                loss = fn(x, None)
            losses[name] = loss.item()
            if name != "floor":
                grads[name] = torch.autograd.grad(loss, params)
        out[f"{objective}: pyro vs floor"] = abs(losses["pyro"] - losses["floor"]) / abs(losses["floor"])
        for path in ("one-pass", "replay"):
            out[f"{objective}: {path} vs pyro"] = abs(losses[path] - losses["pyro"]) / abs(losses["pyro"])
            out[f"{objective}: {path} vs pyro, gradient"] = max(
                ((a - b).abs().max() / b.abs().max()).item() for a, b in zip(grads[path], grads["pyro"]))
    for k in (5, 50):  # the IWAE bound: speed layer (replayed) vs Pyro's RenyiELBO vs the floor
        pyro.clear_param_store()
        config = objective_config("iwae", num_particles=k)
        renyi = pyro.infer.RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1)
        replayed = compile_loss(model, config, notify=None)
        with pyro.validation_enabled(False):
            for _ in range(2):
                replayed.loss(x, None)
        assert replayed.describe()["path"] == "replay", replayed.describe()
        plain = PlainVAE(False).copy_from(model)
        values = {}
        for name, fn in (("pyro", lambda: renyi.loss(model.model, model.guide, x, None)),
                         ("replay", lambda: replayed.loss(x, None).item()), ("floor", lambda: plain.iwae(x, k).item())):
            torch.manual_seed(3)
            with pyro.validation_enabled(False), torch.no_grad():
                values[name] = fn()
        out[f"iwae K={k}: pyro vs floor"] = abs(values["pyro"] - values["floor"]) / abs(values["floor"])
        out[f"iwae K={k}: replay vs pyro"] = abs(values["replay"] - values["pyro"]) / abs(values["pyro"])
    return out


def time_eval(k: int, batch: int, reps: int, traces: bool = True) -> Dict[str, float]:
    """Seconds for importance-sampled bounds (ELBO + IWAE, K samples) on ``batch`` test points, taking turns:
    ``pyro-vae`` (``elbo_and_iwae``: the one pass, K in chunks of ``SAMPLES_PER_PASS // batch``), ``floor`` (the
    same in plain PyTorch: all K at once when K·B ≤ ``SAMPLES_PER_PASS``·2, else the same chunks with a running
    logaddexp) and ``traces`` (the same chunks scored from Pyro's traces, the previous implementation)."""
    model = vae_model().eval()
    plain = PlainVAE(False).copy_from(model).eval()
    x = images(batch, seed=2)
    data = ImageData("bench", x, torch.zeros(batch, dtype=torch.long), x, torch.zeros(batch, dtype=torch.long), 10)
    chunk = max(1, SAMPLES_PER_PASS // batch)
    floor_chunk = k if k * batch <= 2 * SAMPLES_PER_PASS else chunk
    runs = {"pyro-vae": lambda: elbo_and_iwae(model, data, num_samples=k, batch_size=batch),
            "floor": lambda: plain.bounds(x, k, floor_chunk)}
    if traces:
        runs["traces"] = lambda: log_likelihood_batch(model, x, None, k, weights=ImportanceWeights(model, False))
    times: Dict[str, List[float]] = {r: [] for r in runs}
    for i in range(reps + 1):
        for r, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            if i:  # the first is warm-up
                times[r].append(time.perf_counter() - t0)
    return {**{r: statistics.median(ts) for r, ts in times.items()}, "chunk": chunk, "floor_chunk": floor_chunk}


def eval_memory_child(k: int, batch: int) -> None:
    """(In a fresh process) peak resident memory (``VmHWM``: ``ru_maxrss`` would keep the parent's peak across
    fork + exec) of ``elbo_and_iwae`` with K = ``k`` on ``batch`` points."""
    model = vae_model().eval()
    x = images(batch, seed=2)
    data = ImageData("bench", x, torch.zeros(batch, dtype=torch.long), x, torch.zeros(batch, dtype=torch.long), 10)
    before = peak_rss_mb()
    t0 = time.perf_counter()
    bounds = elbo_and_iwae(model, data, num_samples=k, batch_size=batch)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    print(json.dumps({"k": k, "points": batch, "peak_rss_mb": round(peak, 1), "rss_before_mb": round(before, 1),
                      "seconds": round(seconds, 2), "iwae": round(bounds["iwae"], 3)}))


def measure_eval_memory(ks: List[int], batch: int) -> List[Dict]:
    rows = []
    for k in ks:
        out = subprocess.run([sys.executable, __file__, "--eval-memory-child", str(k), "--eval-points", str(batch)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (``VmHWM`` in ``/proc/self/status``), MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def saved_for_backward_mb(step: Callable[[Tensor], float], x: Tensor) -> float:
    """MB of distinct tensors one step keeps for its backward pass (autograd's saved tensors): the transient
    memory a step adds on top of weights, gradients and optimizer state. (CPU has no allocator peak counter.)"""
    seen: Dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        if t.device.type != "meta":
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(x)
    return sum(seen.values()) / 2**20


def memory_child(route: str, batch: int, steps: int) -> None:
    """(In a fresh process) resident memory that training steps add (gradients, optimizer state, activations
    kept by the allocator), sampled after each fifth of ``steps``: flat means no growth."""
    torch.manual_seed(0)
    x = images(batch)
    step = build_route(route)
    base = rss_mb()
    blocks = []
    for _ in range(5):
        for _ in range(steps // 5):
            step(x)
        blocks.append(round(rss_mb() - base, 2))
    saved = round(saved_for_backward_mb(step, x), 2)
    print(json.dumps({"route": route, "batch": batch, "rss_added_mb": blocks, "saved_for_backward_mb": saved}))


def measure_memory(routes: List[str], batch: int, steps: int) -> List[Dict]:
    rows = []
    for r in routes:
        out = subprocess.run([sys.executable, __file__, "--memory-child", r, "--batch-sizes", str(batch),
                              "--steps", str(steps)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def print_memory(rows: List[Dict]) -> List[Dict]:
    print("\nresident memory added by training at batch 128 (fresh process per route), after 40, 80, ... 200 steps; "
          "tensors one step saves for backward:")
    for row in rows:
        print(f"  {row['route']:16s} {row['rss_added_mb']} MB   saved for backward {row['saved_for_backward_mb']} MB")
    return rows


def main(argv: List[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 1024])
    p.add_argument("--routes", nargs="+", default=ROUTES, choices=ROUTES + ["compile"])
    p.add_argument("--steps", type=int, default=300, help="timed steps per route and batch size")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--parts", nargs="+", default=["step", "iwae", "eval"], choices=["step", "iwae", "eval"],
                   help="what to time: the ELBO step routes, the IWAE step routes, importance-sampled evaluation")
    p.add_argument("--iwae-k", type=int, nargs="+", default=[5, 50], help="K for the IWAE step timing")
    p.add_argument("--iwae-batch", type=int, default=128)
    p.add_argument("--iwae-steps", type=int, default=None, help="timed IWAE steps (default: 1500 // K, at least 20)")
    p.add_argument("--eval-k", type=int, nargs="*", default=[100, 1000], help="importance samples for the evaluation timing")
    p.add_argument("--eval-points", type=int, default=500)
    p.add_argument("--eval-reps", type=int, default=5)
    p.add_argument("--eval-memory", type=int, nargs="*", default=None,
                   help="peak RSS of elbo_and_iwae for these K (fresh process each), e.g. 50 5000")
    p.add_argument("--eval-memory-child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--memory", action="store_true", help="also measure the resident memory steps add, per route (subprocesses)")
    p.add_argument("--memory-only", action="store_true", help="only the memory measurement (merged into --json if it exists)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--denormals", choices=["flush", "keep"], default="flush",
                   help="flush (default): subnormal floats are flushed to zero for every route alike, so a route "
                        "whose weights drift into subnormal range is not slowed by the CPU's slow path")
    p.add_argument("--json", default=None, help="write all results to this file")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.denormals == "flush")
    if args.memory_child:
        return memory_child(args.memory_child, args.batch_sizes[0], args.steps)
    if args.eval_memory_child:
        return eval_memory_child(args.eval_memory_child, args.eval_points)
    if args.memory_only:
        results = json.load(open(args.json)) if args.json and os.path.exists(args.json) else {}
        results["memory"] = print_memory(measure_memory(args.routes, 128, 200))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        return

    results: Dict = {"torch": torch.__version__, "pyro": pyro.__version__, "threads": args.threads,
                     "denormals": args.denormals,
                     "objective_rel_diff": same_objective()}
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, {args.threads} thread(s), denormals {args.denormals}; "
          f"same objective (relative |pyro-vae − floor| on equal weights and noise): "
          + "; ".join(f"{k} {v:.1e}" for k, v in results["objective_rel_diff"].items()))
    results["step"] = {}
    for batch in args.batch_sizes if "step" in args.parts else []:
        steps = args.steps if batch <= 128 else max(1, args.steps // 4)
        med = time_routes(args.routes, batch, steps, args.warmup)
        results["step"][batch] = med
        print(f"\nbatch {batch}: median ms/step ({steps} steps after {args.warmup} warm-up), each route timed "
              "in turns with the floors")
        for r, t in med.items():
            floor = PAIRS[r]
            print(f"  {r:16s} {1e3 * t[r]:8.3f} ms   {floor} {1e3 * t[floor]:8.3f} ms   ratio {t[r] / t[floor]:.3f}x")
    results["iwae"] = {}
    for k in args.iwae_k if "iwae" in args.parts else []:
        steps = args.iwae_steps or max(20, 1500 // k)
        med = time_iwae(k, args.iwae_batch, steps, max(5, args.warmup // 4))
        results["iwae"][k] = med
        print(f"\nIWAE K={k}, batch {args.iwae_batch}: median ms/step ({steps} steps), each route timed in turns "
              "with the plain-PyTorch IWAE floors")
        for r, t in med.items():
            floor = IWAE_ROUTES[r][1]
            print(f"  {r:16s} {1e3 * t[r]:8.3f} ms   {floor} {1e3 * t[floor]:8.3f} ms   ratio {t[r] / t[floor]:.3f}x")
    results["eval"] = []
    for k in args.eval_k if "eval" in args.parts else []:
        ev = time_eval(k, args.eval_points, reps=args.eval_reps if k <= 100 else max(2, args.eval_reps // 2))
        results["eval"].append({"k": k, "points": args.eval_points, **ev})
        print(f"\nimportance-sampled evaluation, {args.eval_points} points × K={k} (chunks of {ev['chunk']}; floor "
              f"chunks of {ev['floor_chunk']}): pyro-vae {1e3 * ev['pyro-vae']:.1f} ms, floor {1e3 * ev['floor']:.1f} "
              f"ms, ratio {ev['pyro-vae'] / ev['floor']:.3f}x; Pyro traces {1e3 * ev['traces']:.1f} ms "
              f"({ev['traces'] / ev['floor']:.3f}x)")
    if args.eval_memory:
        results["eval_memory"] = measure_eval_memory(args.eval_memory, args.eval_points)
        for row in results["eval_memory"]:
            print(f"  elbo_and_iwae K={row['k']}, {row['points']} points: peak RSS {row['peak_rss_mb']} MB, "
                  f"{row['rss_before_mb']} MB before evaluating ({row['seconds']} s)")
    if args.memory:
        results["memory"] = print_memory(measure_memory(args.routes, 128, 200))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
