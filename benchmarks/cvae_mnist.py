"""Quadrant completion on real MNIST: the CVAE's −ELBO and −log p(x|c) next to the deterministic baseline's NLL.

For 1, 2 and 3 visible quadrants, train ``configs/mnist_cvae.yaml`` with its baseline phase
(``model.pretrain.epochs``: the baseline x̂ = f(c) is fitted first and starts the CVAE's decoder — the same
mechanism as ``pyro-vae train``), then report on the 1,000 held-out images, per image, over the hidden
pixels only (nats, lower is better):

* ``baseline_nll``: −log p(x|c) of the baseline (the Bernoulli NLL of the hidden pixels; Pyro's "NN" row);
* ``cvae_neg_elbo``: −ELBO = −E_q(z|x,c)[log p(x|z,c) + log p(z|c) − log q(z|x,c)], the quantity Pyro's table
  reports for the CVAE ("CVAE (Monte Carlo)": ``Trace_ELBO(num_particles=10)``'s loss over the hidden pixels),
  here averaged over the same K draws as the next number;
* ``cvae_nll``: the importance-sampled −log (1/K) Σ_k p(x, z_k|c) / q(z_k|x, c) (tighter: −ELBO ≥ it ≥ −log p(x|c)
  in expectation).

Also writes the completions figure (input, truth, baseline, CVAE samples).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/cvae_mnist.py --epochs 20 --out benchmarks/results

``--converged``: each setting trained to where the validation slice has levelled off, then over seeds. Per number
of visible quadrants, on ``data.validation=0.1`` of the training images with seed 0 (the held-out images are
never read): the baseline alone (``model.type=baseline``) until its validation log p(x|c) has not risen for
``PATIENCE`` epochs, its best epoch being the baseline phase's budget B; then the CVAE with a B-epoch baseline
phase until its validation IWAE bound levels off, its best epoch being the CVAE's budget C. Then seeds 0, 1, 2 are
trained on all 9,000 training images for B + C epochs and scored on the held-out images as above. Every run goes
through the sweep runner (``OUT/converged/<v>q/{budget-baseline,budget-cvae,seeds}``): rerunning resumes, finished
runs are kept. ``--report`` prints the table and writes ``OUT/converged/cvae_converged.json`` and ``.md``.

    OMP_NUM_THREADS=1 python benchmarks/cvae_mnist.py --converged --seeds 0 1 2     # resumable
    python benchmarks/cvae_mnist.py --converged --report
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pyro
import torch
from sweep_report import replace_between, stopped_run  # first: it puts this checkout's pyro_vae on the path

from pyro_vae import load_config, plots
from pyro_vae.data import load_data
from pyro_vae.data.quadrants import show_hidden
from pyro_vae.evaluation.loglik import test_log_likelihood
from pyro_vae.models import build_model
from pyro_vae.train import Trainer
from pyro_vae.train.callbacks import Callback
from pyro_vae.train.phases import PRETRAIN

REPO = Path(__file__).resolve().parents[1]


def standard_error(values: torch.Tensor) -> float:
    return float(values.std() / values.numel() ** 0.5)


@torch.no_grad()
def baseline_nll(model, data, batch_size: int = 500) -> torch.Tensor:
    """−log p(x|c) of every held-out image under the CVAE's fitted baseline (hidden pixels)."""
    return -torch.cat([model.baseline.log_prob(x, y) for x, y in data.batches("test", batch_size)])


def run_one(visible: int, args: argparse.Namespace, out: Path) -> dict:
    overrides = [f"model.visible={visible}", f"train.epochs={args.epochs}", f"model.pretrain.epochs={args.baseline_epochs}",
                 "train.progress=false"]
    cfg = load_config(REPO / "configs" / "mnist_cvae.yaml", overrides)
    # the config's root is relative to the repository; --data-root points elsewhere (e.g. from a worktree)
    cfg.data.root = str(Path(args.data_root).resolve() if args.data_root else (REPO / cfg.data.root).resolve())
    pyro.clear_param_store()
    pyro.set_rng_seed(cfg.seed)
    data = load_data(cfg.data, cfg.seed)
    model = build_model(cfg.model, data.shape, data.num_classes)
    marks = {"start": time.perf_counter()}

    class PhaseEnd(Callback):
        def on_phase_end(self, trainer: Trainer, phase: str) -> None:
            if phase == PRETRAIN:  # the baseline phase is over
                marks["baseline"] = time.perf_counter()

    Trainer(model, data, cfg.train, seed=cfg.seed).fit([PhaseEnd()])
    marks["cvae"] = time.perf_counter()
    model.eval()
    pyro.set_rng_seed(cfg.seed)
    ll = test_log_likelihood(model, data, args.num_samples, batch_size=200)
    row = {"visible": visible, "cvae_neg_elbo": -float(ll.elbo.mean()), "cvae_neg_elbo_se": standard_error(ll.elbo),
           "cvae_nll": -ll.mean, "cvae_nll_se": standard_error(ll.log_px)}
    if model.baseline is not None:
        nll = baseline_nll(model, data)
        row.update(baseline_nll=float(nll.mean()), baseline_nll_se=standard_error(nll),
                   baseline_seconds=marks["baseline"] - marks["start"])
    row.update(cvae_seconds=marks["cvae"] - marks.get("baseline", marks["start"]), epochs=args.epochs,
               baseline_epochs=args.baseline_epochs, num_samples=args.num_samples,
               num_train=int(data.train_x.shape[0]), num_test=int(data.test_x.shape[0]),
               hidden_pixels=model.scored_dims())

    x = data.test_x[:10]
    with torch.no_grad():
        figure = [("input", show_hidden(x, model.cond.visible)), ("truth", x)]
        if model.baseline is not None:
            figure.append(("baseline", model.baseline.reconstruct(x)))
        figure += [(f"CVAE {i + 1}", s) for i, s in enumerate(model.complete(x, 3))]
    plots.save_labelled_rows(figure, out / f"cvae_completions_{visible}q.png",
                             title=f"{visible} visible quadrant(s): hidden pixels grey in the input")
    return row


# --- --converged ------------------------------------------------------------------------------------------------
CONFIG = REPO / "configs" / "mnist_cvae.yaml"
PATIENCE, MAX_EPOCHS, BUDGET_SEED = 10, 200, 0


def validation_budget(folder: Path, monitor: str) -> Optional[int]:
    """The best epoch of a finished validation run in ``folder`` under the stopping rule (None: not finished)."""
    run = stopped_run(folder, BUDGET_SEED, PATIENCE, monitor)
    return None if run is None else run[1]


@torch.no_grad()
def score_run(folder: Path, num_samples: int) -> Dict[str, float]:
    """A finished seed's held-out numbers (hidden pixels, per image): baseline NLL, CVAE −ELBO and IS NLL."""
    from pyro_vae import load_run

    run = load_run(folder)
    data, model = run.data(), run.model
    model.eval()
    pyro.set_rng_seed(run.config.seed)
    ll = test_log_likelihood(model, data, num_samples, batch_size=200)
    nll = baseline_nll(model, data)
    return {"seed": run.config.seed, "baseline_nll": float(nll.mean()), "cvae_neg_elbo": -float(ll.elbo.mean()),
            "cvae_nll": -ll.mean, "num_samples": num_samples, "epochs": len(run.history),
            "seconds": sum(h.get("seconds", 0.0) for h in run.history)}


def converged(visible: Sequence[int], seeds: Sequence[int], num_samples: int, out: Path, data_root: str,
              overrides: Sequence[str] = (), max_epochs: int = MAX_EPOCHS) -> None:
    """Stage one (the budgets B and C on the validation slice), then every seed at B + C, per visible count."""
    from pyro_vae.experiments.sweep import sweep

    root = [f"data.root={data_root}", "train.progress=false", *overrides]
    stop = [f"train.epochs={max_epochs}", f"train.early_stopping.patience={PATIENCE}", "data.validation=0.1",
            f"seed={BUDGET_SEED}"]
    for v in visible:
        folder = out / f"{v}q"
        sweep(CONFIG, [*root, f"model.visible={v}", "model.type=baseline", *stop,
                       "train.early_stopping.monitor=elbo"], folder / "budget-baseline", 1, 0, keep=("seed",))
        b = validation_budget(folder / "budget-baseline", "elbo")
        if b is None:
            continue
        sweep(CONFIG, [*root, f"model.visible={v}", f"model.pretrain.epochs={b}", *stop,
                       "train.early_stopping.monitor=iwae"], folder / "budget-cvae", 1, 0, keep=("seed",))
        c = validation_budget(folder / "budget-cvae", "iwae")
        if c is None:
            continue
        print(f"{v} visible quadrant(s): baseline budget {b}, CVAE budget {c} epochs", flush=True)
        sweep(CONFIG, [*root, f"model.visible={v}", f"model.pretrain.epochs={b}", f"train.epochs={c}",
                       "seed=" + ",".join(map(str, seeds))], folder / "seeds", 1, 0, keep=("seed",))
        for seed in seeds:
            run = folder / "seeds" / f"seed={seed}"
            result = run / "quadrants.json"
            if (run / "model.pt").is_file() and not result.is_file():
                result.write_text(json.dumps({"visible": v, "baseline_budget": b, "cvae_budget": c,
                                              **score_run(run, num_samples)}, indent=1))


def converged_report(out: Path) -> str:
    """The table of the finished seeds, mean ± sd per visible count; writes cvae_converged.json / .md in ``out``."""
    rows: List[Dict] = [json.loads(p.read_text()) for p in sorted(out.glob("*q/seeds/seed=*/quadrants.json"))]

    def cell(values: List[float]) -> str:
        return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else \
            f"{values[0]:.2f}"

    lines = ["| visible quadrants | budget: baseline + CVAE epochs | seeds | baseline −log p(x\\|c) | CVAE −ELBO | "
             "CVAE IS −log p(x\\|c) (K) | gap (baseline − CVAE −ELBO) |", "|---|---|---|---|---|---|---|"]
    for v in sorted({r["visible"] for r in rows}):
        mine = [r for r in rows if r["visible"] == v]
        base, elbo = [r["baseline_nll"] for r in mine], [r["cvae_neg_elbo"] for r in mine]
        lines.append(f"| {v} | {mine[0]['baseline_budget']} + {mine[0]['cvae_budget']} | "
                     f"{', '.join(str(r['seed']) for r in mine)} | {cell(base)} | {cell(elbo)} | "
                     f"{cell([r['cvae_nll'] for r in mine])} ({mine[0]['num_samples']}) | "
                     f"{cell([a - b for a, b in zip(base, elbo)])} |")
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cvae_converged.json").write_text(json.dumps(rows, indent=1))
    (out / "cvae_converged.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the CVAE (main phase)")
    parser.add_argument("--baseline-epochs", type=int, default=None,
                        help="epochs of the baseline phase (default: --epochs; 0: the CVAE from scratch, no baseline)")
    parser.add_argument("--num-samples", type=int, default=100, help="importance samples K per test image")
    parser.add_argument("--visible", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data-root", default=None, help="folder of the t10k IDX files (default: the config's)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--converged", action="store_true",
                        help="budgets chosen on the validation slice, then --seeds at them (see the docstring)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--converged: the seeds")
    parser.add_argument("--report", action="store_true", help="--converged: only the table of the finished seeds")
    parser.add_argument("--write-up", action="store_true", help="--converged: also put the table into benchmarks/cvae.md")
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="--converged: cap of the validation runs")
    parser.add_argument("overrides", nargs="*", help="--converged: key=value for every run, e.g. data.limit=1000")
    args = parser.parse_args()
    if args.converged:
        torch.set_num_threads(1)
        out = Path(args.out) / "cvae" / "converged"
        root = str(Path(args.data_root).resolve() if args.data_root else (REPO.parent / "shared" / "data" / "MNIST" / "raw"))
        if not args.report:
            converged(args.visible, args.seeds, args.num_samples, out, root, args.overrides, args.max_epochs)
        text = converged_report(out)
        print(text)
        if args.write_up:
            doc = REPO / "benchmarks" / "cvae.md"
            doc.write_text(replace_between(doc.read_text(), "<!-- cvae-converged:start -->",
                                           "<!-- cvae-converged:end -->", text))
        return
    if args.baseline_epochs is None:
        args.baseline_epochs = args.epochs
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for visible in args.visible:
        rows.append(run_one(visible, args, out))
        print(json.dumps(rows[-1]), flush=True)
        name = f"cvae_mnist_{''.join(map(str, args.visible))}q_{args.epochs}ep.json"
        (out / name).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
