"""Held-out log-likelihood on MNIST: pyro-vae's models against pythae's, same data, nets, optimizer and budget.

The setting is ``configs/mnist_likelihood.yaml`` (MNIST t10k, 9,000 train / 1,000 held out, dynamic
binarization, a 784-200-200-50 tanh MLP, Adam 1e-3 without clipping, batch 100, 40 epochs). Each pyro-vae
row is that config plus the overrides in ``ROWS``, trained as a ``pyro-vae sweep`` over the seeds into
``OUT/pyro-vae/<row>/`` and evaluated there with K importance samples (``--num-samples``). The pythae rows
(optional extra ``bench``; skipped with a note when pythae is not installed) are trained here, from the same
config: for seed s the same split and held-out images (``load_data(config.data, s)``), the same per-epoch
batch order (``ImageData.batches`` with a generator seeded with s, as pyro-vae's trainer does), the same MLP
modules, learning rate, batch size and epochs; each writes ``OUT/pythae/<row>/seed=<s>/result.json`` and the
folder's ``summary.csv`` in the sweep's columns. The report step reads both summaries and writes
``OUT/likelihood_table.md`` and ``OUT/likelihood.png`` (``--write-up``: the table into benchmarks/likelihood.md
too). Rerunning resumes: finished runs are kept.

    python benchmarks/likelihood.py --seeds 0 1 2 --num-samples 1000 --workers 1     # every row, then the report
    python benchmarks/likelihood.py --rows vae iwae5 --libraries pyro-vae --seeds 0
    python benchmarks/likelihood.py --report --write-up                              # table + figure only
    python benchmarks/likelihood.py --quick                                          # a smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pyro
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweep_report import REPO, read_summary, replace_between, stopped_run, table  # first: it puts this checkout's pyro_vae on the path

from pyro_vae.config.run import RunConfig, load_config
from pyro_vae.data import load_data
from pyro_vae.errors import PyroVAEError
from pyro_vae.evaluation.loglik import SAMPLES_PER_PASS
from pyro_vae.experiments.summary import write_csv
from pyro_vae.nets.mlp import MLPConfig, MLPDecoder, MLPEncoder
from pyro_vae.train.checkpoint import write_atomic

CONFIG = REPO / "configs" / "mnist_likelihood.yaml"
OUT = REPO / "benchmarks" / "results" / "likelihood" / "sweeps"
WRITEUP = REPO / "benchmarks" / "likelihood.md"
TABLE_START, TABLE_END = "<!-- likelihood-table:start -->", "<!-- likelihood-table:end -->"
CONVERGED_START, CONVERGED_END = "<!-- likelihood-converged:start -->", "<!-- likelihood-converged:end -->"
MNIST_ROOT = Path(os.environ.get("PYRO_VAE_MNIST", REPO.parent / "shared" / "data" / "MNIST" / "raw"))
LIBRARIES = ("pyro-vae", "pythae")
#: --quick: a smoke run of every row (1 epoch on 900 images, K = 20, seed 0), into its own folder
QUICK = ["train.epochs=1", "data.limit=1000"]
QUICK_SAMPLES = 20

#: pyro-vae rows: overrides of configs/mnist_likelihood.yaml (whose header lists them too)
ROWS: Dict[str, List[str]] = {
    "vae": [],
    "vae-meanfield": ["train.objective.type=meanfield"],  # the closed-form KL, as pythae's VAE computes it
    "iwae5": ["train.objective.type=iwae", "train.objective.num_particles=5"],
    "iwae50": ["train.objective.type=iwae", "train.objective.num_particles=50"],
    "vamp": ["model.prior=vamp"],
    "vamp-hardtanh": ["model.prior=vamp", "model.prior.pseudo_inputs=hardtanh"],
    "flow": ["model.prior=flow", "model.prior.transform=affine_autoregressive", "model.prior.hidden_dims=[200,200]"],
    "iaf": ["model.guide=iaf", "model.guide.hidden_dims=[200,200]"],
    # a candidate for the best combination: the flow prior (with its gauge term) trained as the best row is
    "flow-best": ["model.prior=flow", "model.prior.transform=affine_autoregressive", "model.prior.hidden_dims=[200,200]",
                  "train.objective.type=iwae", "train.objective.num_particles=5", "train.objective.estimator=dreg"],
    # the combination chosen on the validation slice (benchmarks/likelihood.md): IWAE-5 with DReG gradients
    "best": ["train.objective.type=iwae", "train.objective.num_particles=5", "train.objective.estimator=dreg"],
}
#: pythae rows: (model class name, extra config fields)
PYTHAE_ROWS: Dict[str, Tuple[str, Dict]] = {
    "vae": ("VAE", {}),
    "iwae5": ("IWAE", {"number_samples": 5}),
    "iwae50": ("IWAE", {"number_samples": 50}),
    "vamp": ("VAMP", {"number_components": 50}),
    "iaf": ("VAE_IAF", {"n_made_blocks": 2, "n_hidden_in_made": 2, "hidden_size": 200}),
}


@dataclass
class Setting:
    """What both libraries share, read from the config: the MLP, the latent size and the optimizer."""

    hidden_dims: List[int] = field(default_factory=lambda: [200, 200])
    activation: str = "tanh"
    latent_dim: int = 50
    lr: float = 1e-3
    batch_size: int = 100
    epochs: int = 40

    @classmethod
    def of(cls, config: RunConfig) -> "Setting":
        net = config.model.network
        return cls(list(net.hidden_dims), net.activation, config.model.latent_dim, config.train.lr,
                   config.train.batch_size, config.train.epochs)


def run_config(overrides: Sequence[str] = ()) -> RunConfig:
    """The benchmark's config with ``overrides`` (its relative ``data.root`` read from the repository root)."""
    config = load_config(CONFIG, list(overrides))
    root = getattr(config.data, "root", None)
    if root and not Path(root).is_absolute():
        config.data.root = str((REPO / root).resolve())
    return config


# --- the importance-sampling estimator (used for pythae models) ------------------------------------------------
LogWeightFn = Callable[[Tensor, int], Tensor]  # (x (B, ...), k) -> log w (k, B)


@torch.no_grad()
def importance_log_px(log_w: LogWeightFn, x: Tensor, num_samples: int, batch_size: int = 100
                      ) -> Tuple[Tensor, Tensor]:
    """Per-datapoint log (1/K) Σ_k w_k and (1/K) Σ_k log w_k, K = ``num_samples`` drawn in chunks."""
    log_px, elbo = [], []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        chunk = max(1, SAMPLES_PER_PASS // xb.shape[0])
        acc = torch.full((xb.shape[0],), -math.inf)
        total = torch.zeros(xb.shape[0])
        for k0 in range(0, num_samples, chunk):
            lw = log_w(xb, min(chunk, num_samples - k0))
            acc = torch.logaddexp(acc, torch.logsumexp(lw, 0))
            total += lw.sum(0)
        log_px.append(acc - math.log(num_samples))
        elbo.append(total / num_samples)
    return torch.cat(log_px), torch.cat(elbo)


def _normal_log_prob(z: Tensor, loc: Tensor, log_var: Tensor) -> Tensor:
    """Σ_d log N(z_d; μ_d, exp(log_var_d)), with the constant."""
    return (-0.5 * (math.log(2 * math.pi) + log_var + (z - loc) ** 2 / log_var.exp())).sum(-1)


def _bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    """Σ_pixels x·ℓ − softplus(ℓ); ``logits`` (k, B, P), ``x`` (B, P)."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def pythae_log_weights(model: nn.Module) -> LogWeightFn:
    """log p(x|z) + log p(z) − log q(z|x) of a pythae VAE / IWAE / VAMP / VAE_IAF built on the wrapped MLP
    modules of :func:`pythae_model`: q is N(μ, σ²) (pushed through the IAF for VAE_IAF), p(z) is N(0, I) or the
    VampPrior (1/C) Σ_c q(z|u_c) at pythae's pseudo-inputs, p(x|z) is Bernoulli(logits) (pythae's ``sigmoid``
    output, read as logits for precision)."""
    name = model.model_name

    def log_w(x: Tensor, k: int) -> Tensor:
        out = model.encoder(x)
        loc, log_var = out.embedding, out.log_covariance  # (B, D)
        z = loc + torch.randn(k, *loc.shape) * (0.5 * log_var).exp()  # (k, B, D)
        log_q = _normal_log_prob(z, loc, log_var)
        if name == "VAE_IAF":
            flowed = model.iaf_flow.inverse(z.reshape(-1, z.shape[-1]))
            z = flowed.out.reshape(z.shape)
            log_q = log_q - flowed.log_abs_det_jac.reshape(log_q.shape)
        if name == "VAMP":
            pseudo = model.pseudo_inputs(model.idle_input).reshape((model.number_components,) + tuple(x.shape[1:]))
            comp = model.encoder(pseudo)
            log_pz = torch.logsumexp(_normal_log_prob(z.unsqueeze(-2), comp.embedding, comp.log_covariance), -1)
            log_pz = log_pz - math.log(model.number_components)
        else:
            log_pz = _normal_log_prob(z, torch.zeros(()), torch.zeros(()))
        logits = model.decoder.logits(z.reshape(-1, z.shape[-1])).reshape(k, x.shape[0], -1)
        return _bernoulli_log_prob(x.reshape(x.shape[0], -1), logits) + log_pz - log_q

    return log_w


def pyro_vae_log_weights(model: nn.Module) -> LogWeightFn:
    """The same log w for a pyro-vae VAE with the Gaussian guide, from its parts (encoder, prior, likelihood):
    the test checks :func:`importance_log_px` with it against ``pyro_vae.evaluation.loglik``."""

    def log_w(x: Tensor, k: int) -> Tensor:
        loc, scale = model.encode(x)
        z = loc + torch.randn(k, *loc.shape) * scale
        log_px_z = model.likelihood.distribution(model.decoder(z)).log_prob(x)
        return log_px_z + model.prior.log_prob(z) - _normal_log_prob(z, loc, 2 * scale.log())

    return log_w


# --- pythae models on pyro-vae's MLP -------------------------------------------------------------------------
def pythae_model(kind: str, data_shape: Tuple[int, ...], setting: Setting) -> nn.Module:
    """A pythae model of class ``PYTHAE_ROWS[kind]`` whose encoder and decoder are pyro-vae's MLP modules."""
    import pythae.models as pm
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    net = MLPConfig(hidden_dims=list(setting.hidden_dims), activation=setting.activation)

    class PythaeEncoder(BaseEncoder):
        """pyro-vae's ``MLPEncoder`` (same layers, same log-variance clamp) in pythae's encoder interface."""

        def __init__(self) -> None:
            BaseEncoder.__init__(self)
            self.net = MLPEncoder(net, data_shape, setting.latent_dim)

        def forward(self, x: Tensor) -> ModelOutput:
            loc, scale = self.net(x)
            return ModelOutput(embedding=loc, log_covariance=2 * scale.log())

    class PythaeDecoder(BaseDecoder):
        """pyro-vae's ``MLPDecoder`` with one output per pixel; pythae's Bernoulli loss reads ``sigmoid(logits)``."""

        def __init__(self) -> None:
            BaseDecoder.__init__(self)
            self.net = MLPDecoder(net, setting.latent_dim, data_shape, 1)

        def logits(self, z: Tensor) -> Tensor:
            return self.net(z).flatten(-len(data_shape) - 1)

        def forward(self, z: Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=torch.sigmoid(self.logits(z)).reshape(-1, *data_shape))

    cls_name, extra = PYTHAE_ROWS[kind]
    config_cls = {"VAE": pm.VAEConfig, "IWAE": pm.IWAEConfig, "VAMP": pm.VAMPConfig,
                  "VAE_IAF": pm.VAE_IAF_Config}[cls_name]
    config = config_cls(input_dim=tuple(data_shape), latent_dim=setting.latent_dim, reconstruction_loss="bce",
                        **extra)
    return getattr(pm, cls_name)(config, encoder=PythaeEncoder(), decoder=PythaeDecoder())


# --- the two sides -------------------------------------------------------------------------------------------
def sweep_pyro_vae(rows: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], out: Path,
                   workers: Optional[int], num_samples: int) -> None:
    """Each pyro-vae row: a sweep of the config plus its overrides over ``seeds`` into ``out/pyro-vae/<row>``."""
    from pyro_vae.experiments.sweep import sweep

    for row in rows:
        print(f"pyro-vae/{row}: sweep over seeds {list(seeds)}", flush=True)
        grid = [*ROWS[row], f"seed={','.join(map(str, seeds))}", *overrides]
        sweep(CONFIG, grid, out / "pyro-vae" / row, workers, num_samples, keep=("seed",))


# --- the budget chosen on validation -------------------------------------------------------------------------
#: stage one of --converged: each row on seed 0 with the last 10 % of its training rows as a validation slice,
#: stopped once the validation IWAE bound (K = eval_samples) has gone PATIENCE epochs without a new best
PATIENCE, MAX_EPOCHS, BUDGET_SEED = 30, 1000, 0
BUDGET = ["data.validation=0.1", f"train.epochs={MAX_EPOCHS}", f"train.early_stopping.patience={PATIENCE}",
          "train.early_stopping.monitor=iwae"]


def choose_budgets(rows: Sequence[str], overrides: Sequence[str], out: Path, workers: Optional[int]
                   ) -> Dict[str, int]:
    """Stage one: per row, the epoch of the best validation IWAE bound (``out/budget/<row>``; the test split is
    never read). Returns ``{row: epochs}`` for the rows whose validation run has stopped."""
    from pyro_vae.experiments.sweep import sweep

    budgets = {}
    for row in rows:
        folder = out / "budget" / row
        print(f"pyro-vae/{row}: budget on the validation slice (seed {BUDGET_SEED})", flush=True)
        (result,) = sweep(CONFIG, [*ROWS[row], f"seed={BUDGET_SEED}", *BUDGET, *overrides], folder, workers, 0,
                          keep=("seed",))
        if result["status"] == "done":  # stopped, or at its last epoch
            budgets[row] = stopped_run(folder, BUDGET_SEED, PATIENCE, "iwae")[1]
    path = out / "budget" / "budgets.json"  # other processes' rows are kept: two may share the folder
    path.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(path.read_text()) if path.is_file() else {}
    # replaced atomically: a process reading it while another writes sees the old file or the new, never half
    write_atomic(path, json.dumps({**known, **budgets}, indent=1).encode())
    return budgets


def train_pythae(kind: str, config: RunConfig, num_samples: int) -> Dict[str, float]:
    """One pythae row for ``config.seed``: trained on the config's split and budget, scored with K draws."""
    seed = config.seed
    data = load_data(config.data, seed)
    setting = Setting.of(config)
    pyro.set_rng_seed(seed)  # initialisation and the per-batch Bernoulli draws (global RNG)
    model = pythae_model(kind, data.shape, setting)
    optimizer = torch.optim.Adam(model.parameters(), lr=setting.lr)
    order = torch.Generator().manual_seed(seed)  # one permutation per epoch, as pyro-vae's Trainer draws it
    seconds = 0.0
    for _ in range(setting.epochs):
        start = time.perf_counter()
        model.train()
        for x, _ in data.batches("train", setting.batch_size, shuffle=True, generator=order):
            optimizer.zero_grad(set_to_none=True)
            loss = model({"data": x}, epoch=10 ** 9).loss  # epoch: past any VAMP warm-up (none is configured)
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
    model.eval()
    torch.manual_seed(10_000 + seed)
    log_px, elbo = importance_log_px(pythae_log_weights(model), data.test_x, num_samples)
    return {"status": "done", "epochs": setting.epochs, "test_elbo": float(elbo.mean()),
            "test_log_likelihood": float(log_px.mean()), "num_samples": num_samples, "seconds": round(seconds, 2)}


def run_pythae(rows: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], out: Path,
               num_samples: int) -> None:
    """Each pythae row and seed not yet done: ``out/pythae/<row>/seed=<s>/result.json``, then the row's
    ``summary.csv`` (the sweep's columns: run, seed, status, epochs, ELBOs, log p(x), seconds)."""
    try:
        import pythae  # noqa: F401
    except ImportError:
        print("pythae rows skipped: pythae is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return
    for row in (r for r in rows if r in PYTHAE_ROWS):
        folder = out / "pythae" / row
        table_rows = []
        for seed in seeds:
            path = folder / f"seed={seed}" / "result.json"
            if not path.is_file():
                print(f"pythae/{row} seed {seed}: training", flush=True)
                result = train_pythae(row, run_config([*overrides, f"seed={seed}"]), num_samples)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=1))
            result = json.loads(path.read_text())
            table_rows.append({"run": f"seed={seed}", "seed": seed, **result})
        write_csv(table_rows, folder / "summary.csv")


# --- report --------------------------------------------------------------------------------------------------
COLUMNS = [("held-out ELBO", "test_elbo", 1.0), ("held-out log p(x)", "test_log_likelihood", 1.0),
           ("s / epoch", "epoch_seconds", 1.0), ("train seconds", "seconds", 1.0)]


def collect(out: Path) -> List[Dict[str, str]]:
    """Every run of both sides, in the rows' order: the summaries' rows with ``row`` and ``library`` added."""
    runs = []
    for library, rows in (("pyro-vae", ROWS), ("pythae", PYTHAE_ROWS)):
        for row in rows:
            if (out / library / row / "summary.csv").is_file():
                for r in read_summary(out / library / row):
                    if r.get("seconds") and r.get("epochs"):
                        r["epoch_seconds"] = str(float(r["seconds"]) / float(r["epochs"]))
                    runs.append({"row": row, "library": library, **r})
    return runs


def figure(runs: Sequence[Dict[str, str]], path: Path) -> None:
    """Held-out log p(x) against training time, mean ± sd over seeds: every row (left), the top rows (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours, markers = {"pyro-vae": "tab:blue", "pythae": "tab:orange"}, {"pyro-vae": "o", "pythae": "s"}
    points = []
    for (row, library) in dict.fromkeys((r["row"], r["library"]) for r in runs):
        done = [r for r in runs if (r["row"], r["library"]) == (row, library) and r["status"] == "done"
                and r.get("test_log_likelihood")]
        if done:
            lp = [float(r["test_log_likelihood"]) for r in done]
            minutes = statistics.fmean(float(r["seconds"]) / 60 for r in done)
            points.append((library, row, minutes, statistics.fmean(lp), statistics.stdev(lp) if len(lp) > 1 else 0.0))
    if not points:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    top = max(p[3] for p in points)
    for ax, zoom in zip(axes, (False, True)):
        for library, row, minutes, mean, sd in points:
            if zoom and mean < top - 8:
                continue
            ax.errorbar(minutes, mean, yerr=sd, fmt=markers[library], color=colours[library], capsize=3)
            ax.annotate(row, (minutes, mean), textcoords="offset points", xytext=(5, 4), fontsize=8,
                        color=colours[library])
        ax.set_xscale("log")
        ax.set_xlabel("training time (minutes, one run)")
        ax.grid(alpha=0.3, which="both")
    for library in dict.fromkeys(p[0] for p in points):
        axes[0].plot([], [], markers[library], color=colours[library], label=library)
    axes[0].legend(loc="lower right")
    axes[0].set_ylabel("held-out log p(x), nats")
    axes[0].set_title("every row (mean ± sd over seeds)", fontsize=9)
    axes[1].set_title("the rows within 8 nats of the best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def budget_table(out: Path) -> str:
    """Stage one of --converged, per row: the epochs its validation run trained, the budget it chose (its best
    epoch) and the validation IWAE bound there; rows whose validation run has not stopped are left out."""
    lines = ["| row | validation run stopped after (epochs) | budget: its best epoch | validation IWAE bound there (K = 10) |",
             "|---|---|---|---|"]
    for row in ROWS:
        folder = out / "budget" / row
        run = stopped_run(folder, BUDGET_SEED, PATIENCE, "iwae")
        if run is None:
            continue
        history, budget = run
        bound = next(h["test_iwae"] for h in history if h["epoch"] == budget)
        lines.append(f"| {row} | {history[-1]['epoch']} | {budget} | {bound:.2f} |")
    return "\n".join(lines) + "\n"


def report(out: Path, writeup: Optional[Path] = None, converged: bool = False) -> str:
    """``out/likelihood_table.md`` (one line per row and library, mean ± sd over seeds; --converged: after the
    budgets chosen on validation) and ``out/likelihood.png``; with ``writeup``, the table also replaces the one
    in that file (the converged one between its own markers)."""
    runs = collect(out)
    text = (budget_table(out) + "\n" if converged else "") + table(runs, ["row", "library"], COLUMNS)
    out.mkdir(parents=True, exist_ok=True)
    (out / "likelihood_table.md").write_text(text)
    figure(runs, out / "likelihood.png")
    if writeup is not None and writeup.exists():
        start, end = (CONVERGED_START, CONVERGED_END) if converged else (TABLE_START, TABLE_END)
        writeup.write_text(replace_between(writeup.read_text(), start, end, text))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--num-samples", type=int, default=1000, help="K of the importance-sampled log p(x)")
    parser.add_argument("--workers", type=int, default=None, help="pyro-vae runs at once (default: the CPUs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the pythae runs")
    parser.add_argument("--out", type=Path, default=None, help=f"sweep folder (default: {OUT.relative_to(REPO)})")
    parser.add_argument("--report", action="store_true", help="only the table and figure, from the summaries")
    parser.add_argument("--write-up", action="store_true", help="also put the table into benchmarks/likelihood.md")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {' '.join(QUICK)}, K = {QUICK_SAMPLES}, seed 0, into OUT/../quick")
    parser.add_argument("--converged", action="store_true",
                        help=f"each row trained for the budget its validation run chose (stopped after {PATIENCE} "
                             f"epochs without a better validation IWAE bound, at most {MAX_EPOCHS}), into "
                             f"OUT/../converged; pythae rows at the matching pyro-vae row's budget")
    parser.add_argument("overrides", nargs="*", help="key=value for every run of both libraries, e.g. "
                                                     "data.root=PATH/TO/MNIST/raw train.epochs=100")
    args = parser.parse_args()
    if args.quick:
        args.out = args.out or OUT.parent / "quick"
        args.seeds, args.num_samples, args.overrides = [0], QUICK_SAMPLES, [*QUICK, *args.overrides]
    out = args.out or OUT
    overrides = [f"data.root={MNIST_ROOT}", *args.overrides]
    if args.converged:
        out = args.out or OUT.parent / "converged"
    if not args.report and args.converged:
        torch.set_num_threads(args.threads)
        budgets = choose_budgets(args.rows, overrides, out, args.workers)  # a pythae row takes its namesake's
        for row in args.rows:
            if row not in budgets:
                continue
            budget = [*overrides, f"train.epochs={budgets[row]}"]
            print(f"{row}: budget {budgets[row]} epochs", flush=True)
            if "pyro-vae" in args.libraries:
                sweep_pyro_vae([row], args.seeds, budget, out, args.workers, args.num_samples)
            if "pythae" in args.libraries and row in PYTHAE_ROWS:
                run_pythae([row], args.seeds, budget, out, args.num_samples)
    elif not args.report:
        torch.set_num_threads(args.threads)
        if "pyro-vae" in args.libraries:
            sweep_pyro_vae(args.rows, args.seeds, overrides, out, args.workers, args.num_samples)
        if "pythae" in args.libraries:
            run_pythae(args.rows, args.seeds, overrides, out, args.num_samples)
    print(report(out, WRITEUP if args.write_up and not args.quick else None, converged=args.converged))


if __name__ == "__main__":
    try:
        main()
    except PyroVAEError as e:  # a bad override or data file: one line, exit 2, as the pyro-vae command gives
        print(f"likelihood.py: {e}", file=sys.stderr)
        sys.exit(2)
