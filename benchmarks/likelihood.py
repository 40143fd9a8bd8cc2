"""Held-out log-likelihood on MNIST: pyro-vae's models against pythae's, same data, nets, optimizer and budget.

Data: the MNIST t10k IDX files read by ``configs/mnist_vae.yaml``'s data section (9,000 train / 1,000 held out,
split with seed 0; the held-out images binarized once, seeded; every training batch binarized afresh).
``--validation V`` cuts the first V of the 9,000 training images off as a validation slice (binarized once,
seeded), trains on the remaining 9,000 − V and never reads the held-out 1,000: the mode for choosing the budget
and the best combination.

Both libraries get the same MLP (pyro-vae's own ``MLPEncoder``/``MLPDecoder`` modules, wrapped as pythae
``BaseEncoder``/``BaseDecoder`` for pythae), the same latent size, ``torch.optim.Adam`` with the same learning
rate and no gradient clipping, the same batch size and epoch budget, and the same loop: one ``randperm`` per
epoch from a seeded generator, each batch ``torch.bernoulli``-binarized, one optimizer step on the library's
own loss (pyro-vae: ``Trainer.train_epoch``, i.e. its torch engine on the configured objective; pythae: the
model's ``forward(...).loss``, as pythae's own trainer calls it).

Scoring: log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q(z|x) and the ELBO (1/K) Σ_k log w_k from the
same draws. pyro-vae models are scored by the library (``pyro_vae.evaluation.loglik``, Pyro traces of model and
guide); pythae models by :func:`importance_log_px` here, from their encoder, flow, prior and decoder densities.
``--check`` runs both estimators on one pyro-vae model to show they agree.

    python benchmarks/likelihood.py --epochs 50 --seeds 0 1 2 --resume        # train + score, append to JSONL
    python benchmarks/likelihood.py --validation 1000 --epochs 200 --models pyro-vae/vae --eval-every 10
    python benchmarks/likelihood.py --report                                  # table + figure from the JSONL
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
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a source checkout without installing

import pyro  # noqa: E402

from pyro_vae.config.run import load_config  # noqa: E402
from pyro_vae.data import ImageData, load_data  # noqa: E402
from pyro_vae.errors import PyroVAEError  # noqa: E402
from pyro_vae.evaluation.loglik import SAMPLES_PER_PASS, test_log_likelihood  # noqa: E402
from pyro_vae.experiments.summary import mean_sd  # noqa: E402
from pyro_vae.models import build_model  # noqa: E402
from pyro_vae.nets.mlp import MLPConfig, MLPDecoder, MLPEncoder  # noqa: E402
from pyro_vae.train import Trainer  # noqa: E402

CONFIG = REPO / "configs" / "mnist_vae.yaml"
OUT = REPO / "benchmarks" / "results" / "likelihood"
WRITEUP = REPO / "benchmarks" / "likelihood.md"
TABLE_START, TABLE_END = "<!-- likelihood-table:start -->", "<!-- likelihood-table:end -->"
VALID_START, VALID_END = "<!-- likelihood-validation:start -->", "<!-- likelihood-validation:end -->"


# --- the shared setting --------------------------------------------------------------------------------------
@dataclass
class Setting:
    """What both libraries share: the MLP, the latent size and the optimizer."""

    hidden_dims: List[int] = field(default_factory=lambda: [200, 200])
    activation: str = "tanh"
    latent_dim: int = 50
    lr: float = 1e-3
    batch_size: int = 100

    def overrides(self) -> List[str]:
        """The same setting as overrides of ``configs/mnist_vae.yaml`` (clip_norm=null: plain Adam, as pythae)."""
        return [f"model.network.hidden_dims={json.dumps(self.hidden_dims)}",
                f"model.network.activation={self.activation}", f"model.latent_dim={self.latent_dim}",
                f"train.lr={self.lr}", f"train.batch_size={self.batch_size}", "train.clip_norm=null",
                "train.progress=false", "train.device=cpu"]


SETTING = Setting()

#: pyro-vae rows: overrides of configs/mnist_vae.yaml on top of the shared setting
PYRO_MODELS: Dict[str, List[str]] = {
    "vae": [],
    "vae-meanfield": ["train.objective.type=meanfield"],  # the closed-form KL, as pythae's VAE computes it
    "iwae5": ["train.objective.type=iwae", "train.objective.num_particles=5"],
    "iwae50": ["train.objective.type=iwae", "train.objective.num_particles=50"],
    "vamp": ["model.prior.type=vamp", "model.prior.num_components=50"],
    "vamp-hardtanh": ["model.prior.type=vamp", "model.prior.num_components=50", "model.prior.pseudo_inputs=hardtanh"],
    "flow": ["model.prior.type=flow", "model.prior.transform=affine_autoregressive", "model.prior.num_layers=2",
             "model.prior.hidden_dims=[200,200]"],
    "iaf": ["model.guide=iaf", "model.guide.num_transforms=2", "model.guide.hidden_dims=[200,200]"],
}
#: pythae rows: (model class name, extra config fields)
PYTHAE_MODELS: Dict[str, Tuple[str, Dict]] = {
    "vae": ("VAE", {}),
    "iwae5": ("IWAE", {"number_samples": 5}),
    "iwae50": ("IWAE", {"number_samples": 50}),
    "vamp": ("VAMP", {"number_components": 50}),
    "iaf": ("VAE_IAF", {"n_made_blocks": 2, "n_hidden_in_made": 2, "hidden_size": 200}),
}
#: the best combination, chosen on the validation slice (see benchmarks/likelihood.md); set by --best too
BEST_NAME = "best"


def all_models() -> List[str]:
    return [f"pyro-vae/{m}" for m in PYRO_MODELS] + [f"pyro-vae/{BEST_NAME}"] + [f"pythae/{m}" for m in PYTHAE_MODELS]


# --- data ----------------------------------------------------------------------------------------------------
@dataclass
class Split:
    """Grey-level training images (binarized per batch), and a binarized evaluation set (held out or validation)."""

    train: Tensor
    evaluate: Tensor
    evaluate_name: str


def load_split(validation: int, root: Optional[str] = None) -> Split:
    """``configs/mnist_vae.yaml``'s split (seed 0): 9,000 train / 1,000 held out; with ``validation`` > 0 the
    first ``validation`` training images become the evaluation set (binarized once with a seeded generator)."""
    config = load_config(CONFIG, [f"data.root={root}"] if root else [])
    if not Path(config.data.root).is_absolute():  # the config's relative root is meant from the repository root
        config.data.root = str((REPO / config.data.root).resolve())
    try:
        data = load_data(config.data, 0)
    except PyroVAEError as e:
        raise SystemExit(f"likelihood.py: {e} (give the folder with --data-root)") from None
    if validation <= 0:
        return Split(data.train_x, data.test_x, "held-out")
    if validation >= data.train_x.shape[0]:
        raise SystemExit(f"--validation: {validation} leaves no training images (of {data.train_x.shape[0]})")
    valid = torch.bernoulli(data.train_x[:validation], generator=torch.Generator().manual_seed(1))
    return Split(data.train_x[validation:], valid, "validation")


def batches(x: Tensor, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """One epoch: a seeded permutation, each batch binarized afresh (as ``ImageData.batches`` with dynamic binarization)."""
    order = torch.randperm(x.shape[0], generator=generator)
    for start in range(0, x.shape[0], batch_size):
        yield torch.bernoulli(x[order[start:start + batch_size]])


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
    """log p(x|z) + log p(z) − log q(z|x) of a pythae VAE / IWAE / VAMP / VAE_IAF built on :class:`PythaeEncoder`
    and :class:`PythaeDecoder`: q is N(μ, σ²) (pushed through the IAF for VAE_IAF), p(z) is N(0, I) or the VampPrior
    (1/C) Σ_c q(z|u_c) at pythae's pseudo-inputs, p(x|z) is Bernoulli(logits) (pythae's ``sigmoid`` output, read
    as logits for precision)."""
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
    used only by ``--check``, to test :func:`importance_log_px` against ``pyro_vae.evaluation.loglik``."""

    def log_w(x: Tensor, k: int) -> Tensor:
        loc, scale = model.encode(x)
        log_var = 2 * scale.log()
        z = loc + torch.randn(k, *loc.shape) * scale
        log_px_z = model.likelihood.distribution(model.decoder(z)).log_prob(x)
        return log_px_z + model.prior.log_prob(z) - _normal_log_prob(z, loc, log_var)

    return log_w


# --- pythae models on pyro-vae's MLP -------------------------------------------------------------------------
def pythae_model(kind: str, data_shape: Tuple[int, ...], setting: Setting) -> nn.Module:
    """A pythae model of class ``PYTHAE_MODELS[kind]`` whose encoder and decoder are pyro-vae's MLP modules."""
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

    cls_name, extra = PYTHAE_MODELS[kind]
    config_cls = {"VAE": pm.VAEConfig, "IWAE": pm.IWAEConfig, "VAMP": pm.VAMPConfig,
                  "VAE_IAF": pm.VAE_IAF_Config}[cls_name]
    config = config_cls(input_dim=tuple(data_shape), latent_dim=setting.latent_dim, reconstruction_loss="bce",
                        **extra)
    return getattr(pm, cls_name)(config, encoder=PythaeEncoder(), decoder=PythaeDecoder())


# --- one row: train, then score -----------------------------------------------------------------------------
@dataclass
class Trained:
    model: nn.Module
    epoch_seconds: List[float]
    curve: List[Dict[str, float]]  # evaluation-set bounds at --eval-every epochs


def pyro_vae_overrides(kind: str, setting: Setting, best: Sequence[str]) -> List[str]:
    return setting.overrides() + (list(best) if kind == BEST_NAME else PYRO_MODELS[kind])


def build_row(name: str, seed: int, split: Split, setting: Setting, best: Sequence[str],
              extra: Sequence[str] = ()) -> Tuple[nn.Module, Callable[[], None]]:
    """The row's model, seeded, and a function that trains it for one epoch (``extra``: more pyro-vae overrides)."""
    library, kind = name.split("/")
    pyro.clear_param_store()  # pyro-vae's modules register in Pyro's global store: start each row from an empty one
    pyro.set_rng_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    shape = tuple(split.train.shape[1:])
    if library == "pyro-vae":
        config = load_config(CONFIG, pyro_vae_overrides(kind, setting, best) + list(extra) + [f"seed={seed}"])
        model = build_model(config.model, shape, 10)
        data = ImageData("mnist", split.train, torch.zeros(split.train.shape[0], dtype=torch.long),
                         split.evaluate[:1], torch.zeros(1, dtype=torch.long), 10, binarize="dynamic")
        trainer = Trainer(model, data, config.train, seed=seed)
        trainer.generator = generator  # the same batch order as the pythae loop below

        def epoch() -> None:
            trainer.train_epoch()

    else:
        model = pythae_model(kind, shape, setting)
        optimizer = torch.optim.Adam(model.parameters(), lr=setting.lr)

        def epoch() -> None:
            model.train()
            for x in batches(split.train, setting.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss = model({"data": x}, epoch=10 ** 9).loss  # epoch: past any VAMP warm-up (none is configured)
                loss.backward()
                optimizer.step()

    return model, epoch


def train_row(name: str, seed: int, epochs: int, split: Split, setting: Setting, best: Sequence[str],
              eval_every: int, eval_samples: int, label: Optional[str] = None, extra: Sequence[str] = ()) -> Trained:
    model, epoch = build_row(name, seed, split, setting, best, extra)
    score = pyro_vae_score if name.startswith("pyro-vae/") else pythae_score
    times, curve = [], []
    for e in range(1, epochs + 1):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
        if eval_every and (e % eval_every == 0 or e == epochs):
            model.eval()
            bounds = score(model, split.evaluate, eval_samples)
            curve.append({"epoch": e, "elbo": bounds["elbo"], "log_px": bounds["log_px"]})
            print(f"  {label or name} seed {seed} epoch {e}: {split.evaluate_name} ELBO {bounds['elbo']:.2f}, "
                  f"log p(x) (K={eval_samples}) {bounds['log_px']:.2f}, {times[-1]:.1f} s/epoch", flush=True)
    model.eval()
    return Trained(model, times, curve)


def pyro_vae_score(model: nn.Module, x: Tensor, num_samples: int) -> Dict[str, float]:
    data = ImageData("mnist", x[:1], torch.zeros(1, dtype=torch.long), x, torch.zeros(x.shape[0], dtype=torch.long), 10)
    ll = test_log_likelihood(model, data, num_samples=num_samples, batch_size=100)
    return {"log_px": ll.mean, "elbo": float(ll.elbo.mean())}


def pythae_score(model: nn.Module, x: Tensor, num_samples: int) -> Dict[str, float]:
    log_px, elbo = importance_log_px(pythae_log_weights(model), x, num_samples)
    return {"log_px": float(log_px.mean()), "elbo": float(elbo.mean())}


# --- results file -------------------------------------------------------------------------------------------
def read_rows(path: Path) -> List[Dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: that row is simply redone
                continue
    return rows


def append_row(path: Path, row: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def row_key(row: Dict) -> Tuple:
    return (row["model"], row["seed"], row["epochs"], row["validation"])


def claim_row(results: Path, key: Tuple) -> Optional[Path]:
    """A claim file for row ``key`` beside ``results`` (so that several processes can share one list of rows), or
    None when a live process holds it; a dead process's claim is taken over."""
    folder = results.parent / "claims"
    folder.mkdir(parents=True, exist_ok=True)
    name, seed, epochs, validation = key
    path = folder / f"{name.replace('/', '-')}-s{seed}-e{epochs}-v{validation}.{results.stem}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return None  # held by a live process
        except (ProcessLookupError, ValueError):
            path.write_text(str(os.getpid()))
            return path
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return path


# --- report -------------------------------------------------------------------------------------------------
def group(rows: List[Dict]) -> Dict[Tuple[str, int], List[Dict]]:
    groups: Dict[Tuple[str, int], List[Dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["epochs"]), []).append(row)
    return groups


def table(rows: List[Dict]) -> str:
    lines = ["| model | library | epochs | seeds | held-out ELBO | held-out log p(x) | K (images) | s / epoch | "
             "train wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    order = {name: i for i, name in enumerate(all_models())}
    for (model, epochs), grp in sorted(group(rows).items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        library, kind = model.split("/")
        seconds = [statistics.median(r["epoch_seconds"]) for r in grp]
        lines.append(
            f"| {kind} | {library} | {epochs} | {len(grp)} | {mean_sd([r['elbo'] for r in grp])} | "
            f"{mean_sd([r['log_px'] for r in grp])} | {grp[0]['num_samples']} ({grp[0]['num_images']}) | "
            f"{statistics.mean(seconds):.2f} | {statistics.mean(sum(r['epoch_seconds']) for r in grp):.0f} |")
    return "\n".join(lines)


def figure(rows: List[Dict], path: Path) -> None:
    """Held-out log p(x) against training wall time, mean ± sd over seeds: every row (left), the top rows (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    colours = {"pyro-vae": "tab:blue", "pythae": "tab:orange"}
    marker = {"pyro-vae": "o", "pythae": "s"}
    points = []
    for (model, epochs), grp in group(rows).items():
        library, kind = model.split("/")
        lp = [r["log_px"] for r in grp]
        points.append((library, kind, grp, statistics.mean(sum(r["epoch_seconds"]) / 60 for r in grp),
                       statistics.mean(lp), statistics.stdev(lp) if len(lp) > 1 else 0.0))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    top = max((p[4] for p in points), default=0.0)
    for ax, zoom in zip(axes, (False, True)):
        for library, kind, grp, wall, mean, sd in points:
            if zoom and mean < top - 8:
                continue
            ax.errorbar(wall, mean, yerr=sd, fmt=marker[library], color=colours[library], capsize=3)
            ax.annotate(kind, (wall, mean), textcoords="offset points", xytext=(5, 4), fontsize=8,
                        color=colours[library])
            traced = sorted((r for r in grp if len(r.get("curve", [])) > 1), key=lambda r: r["seed"])
            if not zoom and traced:  # the K = 100 curve during training (lowest seed) at its cumulative time
                curve = traced[0]["curve"]
                xs = [sum(traced[0]["epoch_seconds"][:p["epoch"]]) / 60 for p in curve]
                ax.plot(xs, [p["log_px"] for p in curve], "-" if library == "pyro-vae" else "--",
                        color=colours[library], alpha=0.35, lw=1)
        ax.set_xscale("log")
        ax.set_xticks([t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if t < 2 * max(p[3] for p in points)])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training wall time (minutes, 1 thread, shared 2-core box)")
        ax.grid(alpha=0.3, which="both")
    for library, colour in colours.items():
        axes[0].plot([], [], marker[library], color=colour, label=library)
    axes[0].legend(loc="lower right")
    axes[0].set_ylabel("held-out log p(x), nats")
    axes[0].set_title("every row (markers K = 1000; lines: seed 0 during training, K = 100)", fontsize=9)
    axes[1].set_title("the rows within 8 nats of the best (mean ± sd over seeds)", fontsize=9)
    fig.suptitle("MNIST t10k: 9,000 train / 1,000 held out, same MLP, optimizer and epochs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def validation_table(rows: List[Dict]) -> str:
    """Validation-slice rows: the final bounds of each (model, epochs), and each row's curve."""
    lines = ["| model | library | epochs | seeds | validation ELBO | validation log p(x) | K (images) | s / epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for (model, epochs), grp in sorted(group(rows).items()):
        library, kind = model.split("/")
        seconds = statistics.mean(statistics.median(r["epoch_seconds"]) for r in grp)
        lines.append(f"| {kind} | {library} | {epochs} | {len(grp)} | {mean_sd([r['elbo'] for r in grp])} | "
                     f"{mean_sd([r['log_px'] for r in grp])} | {grp[0]['num_samples']} ({grp[0]['num_images']}) | "
                     f"{seconds:.2f} |")
    for r in (r for r in rows if len(r.get("curve", [])) > 4):  # long curves (the budget study), thinned
        points = [p for p in r["curve"] if p["epoch"] <= 40 or p["epoch"] % 50 == 0 or p is r["curve"][-1]]
        lines += ["", f"Validation curve of {r['model']} (seed {r['seed']}, K = {r.get('eval_samples', 100)} per point):", "",
                  "| epoch | " + " | ".join(str(p["epoch"]) for p in points) + " |",
                  "|---" * (len(points) + 1) + "|",
                  "| ELBO | " + " | ".join(f"{p['elbo']:.1f}" for p in points) + " |",
                  "| log p(x) | " + " | ".join(f"{p['log_px']:.1f}" for p in points) + " |"]
    return "\n".join(lines)


def replace_between(doc: str, start: str, end: str, text: str) -> str:
    if start not in doc or end not in doc:
        return doc
    head, rest = doc.split(start, 1)
    return f"{head}{start}\n{text}\n{end}{rest.split(end, 1)[1]}"


def report(results: Path, validation: Path, writeup: Path, figure_path: Path) -> str:
    rows = [r for r in read_rows(results) if r["validation"] == 0]
    text = table(rows)
    valid = validation_table([r for r in read_rows(validation) if r["validation"] > 0])
    figure(rows, figure_path)
    if writeup.exists():
        doc = replace_between(writeup.read_text(), TABLE_START, TABLE_END, text)
        writeup.write_text(replace_between(doc, VALID_START, VALID_END, valid))
    return text + "\n\n" + valid


# --- --check: the script's estimator against each library's own ------------------------------------------
def check(split: Split, setting: Setting, epochs: int, num_samples: int, num_images: int,
          models: Sequence[str]) -> List[Dict]:
    """Load each row's seed-0 model saved by the main run at ``epochs`` (``--save``; else train one for ``epochs``),
    then score the first ``num_images`` evaluation images twice with K = ``num_samples``:
    with :func:`importance_log_px` and with the library's own estimator (pyro-vae: ``pyro_vae.evaluation.loglik``
    through Pyro traces; pythae: the model's ``get_nll``, one image at a time)."""
    results = []
    for name in models:
        library, kind = name.split("/")
        saved = weights_path(OUT / "likelihood.jsonl", name, 0, epochs, 0)
        if saved.exists() and split.evaluate_name == "held-out":  # a model of the results: seed 0, --epochs
            overrides = pyro_vae_overrides(kind, setting, []) if library == "pyro-vae" else []
            model = load_saved(name, overrides, tuple(split.train.shape[1:]), saved)
            trained = Trained(model, [], [])
        else:
            trained = train_row(name, 0, epochs, split, setting, [], 0, 0)
        x = split.evaluate[:num_images]
        pyro.set_rng_seed(0)
        start = time.perf_counter()
        if library == "pyro-vae":
            own = pyro_vae_score(trained.model, x, num_samples)["log_px"]
            log_w = pyro_vae_log_weights(trained.model)
        else:
            with torch.no_grad():
                own = float(trained.model.get_nll(x, n_samples=num_samples, batch_size=min(num_samples, 100)))
            log_w = pythae_log_weights(trained.model)
        t_own = time.perf_counter() - start
        torch.manual_seed(1)
        start = time.perf_counter()
        log_px, elbo = importance_log_px(log_w, x, num_samples)
        row = {"check": name, "epochs": epochs, "num_samples": num_samples, "images": int(x.shape[0]),
               "library_log_px": own, "script_log_px": float(log_px.mean()),
               "script_log_px_se": float(log_px.std() / math.sqrt(x.shape[0])),
               "library_seconds": t_own, "script_seconds": time.perf_counter() - start}
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def timing(split: Split, setting: Setting, kinds: Sequence[str], epochs: int, results: Path) -> None:
    """Seconds per epoch of each pyro-vae row and its pythae counterpart, their epochs taking turns in one
    process, so that load from other jobs falls on both alike; one line per kind into ``timing.jsonl``."""
    for kind in kinds:
        _, ours = build_row(f"pyro-vae/{kind}", 0, split, setting, [])
        _, theirs = build_row(f"pythae/{kind}", 0, split, setting, [])
        seconds: Dict[str, List[float]] = {"pyro-vae": [], "pythae": []}
        for _ in range(epochs):
            for library, epoch in (("pyro-vae", ours), ("pythae", theirs)):
                start = time.perf_counter()
                epoch()
                seconds[library].append(time.perf_counter() - start)
        row = {"kind": kind, "epochs": epochs, "seconds": seconds, "load": os.getloadavg()[0],
               **{f"{lib}_median": statistics.median(v) for lib, v in seconds.items()}}
        append_row(results.parent / "timing.jsonl", row)
        print(json.dumps(row), flush=True)


def weights_path(results: Path, model: str, seed: int, epochs: int, validation: int) -> Path:
    return results.parent / f"{model.replace('/', '-')}-s{seed}-e{epochs}-v{validation}.pt"


def load_saved(name: str, overrides: Sequence[str], shape: Tuple[int, ...], path: Path) -> nn.Module:
    """A model saved by ``--save``: pyro-vae rebuilt from its overrides (as recorded in its row), pythae from its kind."""
    library, kind = name.split("/")
    if library == "pyro-vae":
        model = build_model(load_config(CONFIG, list(overrides)).model, shape, 10)
    else:
        model = pythae_model(kind, shape, SETTING)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def rescore(results: Path, split: Split, models: Optional[Sequence[str]], seeds: Sequence[int],
            num_samples: Sequence[int], num_images: int) -> None:
    """Score saved models (``--save``) again on the first ``num_images`` evaluation images, once per K in
    ``num_samples`` (how much the estimate moves with K); one line per (row, K) into ``rescore.jsonl``."""
    for row in read_rows(results):
        if (models and row["model"] not in models) or row["seed"] not in seeds:
            continue
        path = weights_path(results, row["model"], row["seed"], row["epochs"], row["validation"])
        if not path.exists():
            continue
        library = row["model"].split("/")[0]
        model = load_saved(row["model"], row["overrides"], tuple(split.train.shape[1:]), path)
        x = split.evaluate[:num_images]
        for k in num_samples:
            torch.manual_seed(20_000 + row["seed"])
            pyro.set_rng_seed(20_000 + row["seed"])
            start = time.perf_counter()
            bounds = (pyro_vae_score if library == "pyro-vae" else pythae_score)(model, x, k)
            out = {"model": row["model"], "seed": row["seed"], "epochs": row["epochs"], "num_samples": k,
                   "num_images": int(x.shape[0]), **bounds, "seconds": time.perf_counter() - start}
            append_row(results.parent / "rescore.jsonl", out)
            print(json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help=f"rows to run (default: all): {all_models()}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--validation", type=int, default=0,
                        help="cut this many of the 9,000 training images off as the evaluation set (0: held out)")
    parser.add_argument("--num-samples", type=int, default=5000, help="K of the importance-sampled log p(x)")
    parser.add_argument("--num-images", type=int, default=1000, help="evaluation images scored (the first N)")
    parser.add_argument("--eval-every", type=int, default=0, help="also score the evaluation set every N epochs")
    parser.add_argument("--eval-samples", type=int, default=100, help="K for the --eval-every curve")
    parser.add_argument("--best", nargs="*", default=[], help="overrides of the 'best' pyro-vae row")
    parser.add_argument("--label", default=BEST_NAME,
                        help="record the best row as pyro-vae/LABEL (to compare candidates on --validation)")
    parser.add_argument("--results", type=Path, default=None,
                        help="JSONL file of rows (default: results/likelihood/likelihood.jsonl, or validation.jsonl "
                             "with --validation)")
    parser.add_argument("--resume", action="store_true", help="skip (model, seed, epochs) rows already in --results")
    parser.add_argument("--save", action="store_true", help="keep each trained model's weights beside --results")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only rewrite the table and figure from --results")
    parser.add_argument("--check", nargs="*", default=None,
                        help="rows whose scores by this script's estimator and by the library's own are compared")
    parser.add_argument("--rescore", nargs="+", type=int, default=None, metavar="K",
                        help="score the saved models of --results again with each K on --num-images images")
    parser.add_argument("--timing", nargs="+", default=None, metavar="KIND",
                        help="time --epochs epochs of pyro-vae/KIND and pythae/KIND taking turns (e.g. vae iwae5)")
    parser.add_argument("--data-root", default=None, help="folder of the MNIST IDX files (default: the config's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.results is None:
        args.results = OUT / ("validation.jsonl" if args.validation > 0 else "likelihood.jsonl")
    if args.report:
        print(report(args.results, args.results.parent / "validation.jsonl", WRITEUP, OUT / "likelihood.png"))
        return
    split = load_split(args.validation, args.data_root)
    if args.timing:
        timing(split, SETTING, args.timing, args.epochs, args.results)
        return
    if args.rescore:
        rescore(args.results, split, args.models, args.seeds, args.rescore, args.num_images)
        return
    if args.check is not None:
        rows = check(split, SETTING, args.epochs, args.num_samples, args.num_images,
                     args.check or ["pyro-vae/vae", "pyro-vae/vamp", "pythae/vae", "pythae/vamp", "pythae/iaf"])
        for row in rows:
            append_row(args.results.parent / "check.jsonl", row)
        return
    models = args.models or all_models()
    for name in models:
        if name not in all_models():
            raise SystemExit(f"--models: unknown row {name!r}; expected one of {all_models()}")
    if f"pyro-vae/{BEST_NAME}" in models and not args.best:
        models = [m for m in models if m != f"pyro-vae/{BEST_NAME}"] if args.models is None else models
        if f"pyro-vae/{BEST_NAME}" in models:
            raise SystemExit("--best: the best row needs its overrides (chosen with --validation)")
    for seed in args.seeds:
        for name in models:
            label = f"pyro-vae/{args.label}" if name == f"pyro-vae/{BEST_NAME}" else name
            key = (label, seed, args.epochs, args.validation)
            if args.resume and key in {row_key(r) for r in read_rows(args.results)}:
                continue
            claim = claim_row(args.results, key)
            if claim is None:  # another process is training this row
                continue
            print(f"{label} seed {seed}: training {args.epochs} epochs on {split.train.shape[0]} images", flush=True)
            trained = train_row(name, seed, args.epochs, split, SETTING, args.best, args.eval_every,
                                args.eval_samples, label)
            x = split.evaluate[: args.num_images]
            torch.manual_seed(10_000 + seed)
            pyro.set_rng_seed(10_000 + seed)
            start = time.perf_counter()
            bounds = (pyro_vae_score if name.startswith("pyro-vae") else pythae_score)(trained.model, x,
                                                                                        args.num_samples)
            row = {"model": label, "seed": seed, "epochs": args.epochs, "validation": args.validation,
                   "evaluated_on": split.evaluate_name, "num_images": int(x.shape[0]),
                   "num_samples": args.num_samples, "elbo": bounds["elbo"], "log_px": bounds["log_px"],
                   "eval_seconds": time.perf_counter() - start, "epoch_seconds": trained.epoch_seconds,
                   "curve": trained.curve, "eval_samples": args.eval_samples, "threads": args.threads,
                   "overrides": (pyro_vae_overrides(name.split("/")[1], SETTING, args.best)
                                 if name.startswith("pyro-vae") else PYTHAE_MODELS[name.split("/")[1]]),
                   "num_params": sum(p.numel() for p in trained.model.parameters()),
                   "load": os.getloadavg()[0]}
            append_row(args.results, row)
            if args.save:
                torch.save(trained.model.state_dict(),
                           weights_path(args.results, label, seed, args.epochs, args.validation))
            claim.unlink(missing_ok=True)
            print(f"{label} seed {seed}: {split.evaluate_name} ELBO {row['elbo']:.2f}, log p(x) {row['log_px']:.2f} "
                  f"(K={args.num_samples}, {row['num_images']} images, {row['eval_seconds']:.0f} s); "
                  f"{statistics.median(row['epoch_seconds']):.2f} s/epoch", flush=True)


if __name__ == "__main__":
    try:
        main()
    except PyroVAEError as e:  # a bad override or data file: one line, as the pyro-vae command gives
        raise SystemExit(f"likelihood.py: {e}") from None
