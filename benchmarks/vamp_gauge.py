"""The VampPrior's gauge term against posterior collapse: tanh and relu MLPs, several seeds, gauge off and on.

The setting is the likelihood benchmark's, trained by benchmarks/mnist_loop.py's hand loop (MNIST t10k, 9,000 train / 1,000 held out, 784-200-200-50 MLP, Adam
1e-3, batch 100, dynamic binarization), with ``model.prior.type=vamp`` (K = 50 pseudo-inputs) and
``model.prior.gauge`` = 0 (no gauge term) or 1 (the default). After each epoch it records the mixture's gauge
moments (‖m‖ and the range of log v_d, see :func:`pyro_vae.priors.vamp.gauge_penalty`) and the active units;
after the last, the held-out ELBO and the importance-sampled log p(x) (K draws).

Active units are counted twice: Burda et al.'s A_d = Var_x(E_q[z_d|x]) > 0.01, which depends on the latent scale
the VampPrior's ELBO leaves free, and the scale-free share A_d / (A_d + E_x[σ_d²(x)]) > 0.01 (the fraction of
the aggregate posterior's variance in dim d that the input explains).

    python benchmarks/vamp_gauge.py --epochs 15 --activations tanh relu --seeds 0 1 2 --gauges 0 1
    (rows already in benchmarks/results/vamp_gauge.jsonl are not trained again)
    python benchmarks/vamp_gauge.py --report            # the table into benchmarks/vamp_gauge.md
    python benchmarks/vamp_gauge.py --first-epoch --seeds 0   # the drift, step by step through the first epoch
    python benchmarks/vamp_gauge.py --quick             # one short run, to check the script works
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnist_loop import REPO, Setting, Split, append_row, build_vamp, load_split, read_rows, score  # noqa: E402
from sweep_report import replace_between  # noqa: E402
from pyro_vae.experiments.summary import mean_sd  # noqa: E402

from pyro_vae.priors.vamp import gauge_penalty, mixture_moments  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "vamp_gauge.jsonl"
WRITEUP = REPO / "benchmarks" / "vamp_gauge.md"
TABLE_START, TABLE_END = "<!-- vamp-gauge-table:start -->", "<!-- vamp-gauge-table:end -->"
SHARE = 0.01  # active-unit threshold, for both counts


@torch.no_grad()
def latent_state(model: nn.Module, x: Tensor) -> Dict[str, float]:
    """Active units (raw and scale-free) on ``x`` and the mixture's gauge moments ‖m‖, min/max log v_d."""
    loc, scale = model.encode(x)
    spread = loc.var(0)
    share = spread / (spread + scale.pow(2).mean(0))
    components = model.prior.components()
    mean, var = mixture_moments(*components)
    log_var = var.log()
    return {"active_units": int((spread > SHARE).sum()), "active_share": int((share > SHARE).sum()),
            "mean_norm": float(mean.norm()), "log_var_min": float(log_var.min()), "log_var_max": float(log_var.max()),
            "gauge_term": float(gauge_penalty(*components, 1.0))}


def run(activation: str, seed: int, gauge: float, epochs: int, split: Split, num_samples: int) -> Dict:
    setting = Setting(activation=activation)
    model, epoch = build_vamp(seed, split, setting, [f"model.prior.gauge={gauge}"])
    curve, start = [], time.perf_counter()
    for e in range(1, epochs + 1):
        epoch()
        model.eval()
        state = latent_state(model, split.evaluate)
        curve.append({"epoch": e, **state})
        print(f"  {activation} seed {seed} gauge {gauge} epoch {e}: {state}", flush=True)
    bounds = score(model, split.evaluate, num_samples)
    return {"activation": activation, "seed": seed, "gauge": gauge, "epochs": epochs, "num_samples": num_samples,
            "elbo": bounds["elbo"], "log_px": bounds["log_px"], **curve[-1], "curve": curve,
            "seconds": time.perf_counter() - start, "torch_threads": torch.get_num_threads()}


def first_epoch(activation: str, seed: int, gauge: float, split: Split) -> List[Dict[str, float]]:
    """One epoch, recording after each step the mixture's ‖m‖ and the share of the decoder's first-layer units
    that the step's z drive into saturation (|tanh| > 0.99, or a ReLU at 0): where the drift takes the decoder."""
    setting = Setting(activation=activation)
    model, epoch = build_vamp(seed, split, setting, [f"model.prior.gauge={gauge}", "train.replay=false"])  # eager: the hook runs each step
    steps: List[Dict[str, float]] = []

    def hook(layer: nn.Module, inputs: tuple, output: Tensor) -> None:
        if layer.training:
            with torch.no_grad():
                act = torch.tanh(output) if activation == "tanh" else output
                dead = act.abs() > 0.99 if activation == "tanh" else act <= 0
                steps.append({"step": len(steps) + 1, "saturated": float(dead.float().mean()),
                              "mean_norm": float(mixture_moments(*model.prior.components())[0].norm())})

    model.decoder.body[0].register_forward_hook(hook)
    epoch()
    return steps


def table(rows: List[Dict]) -> str:
    """One line per (activation, gauge, epochs): mean ± sd over seeds, and each seed's active units."""
    groups: Dict[tuple, List[Dict]] = {}
    for r in rows:
        groups.setdefault((r["activation"], r["gauge"], r["epochs"], r["num_samples"]), []).append(r)
    lines = ["| MLP | gauge | epochs | seeds | held-out ELBO | log p(x) (IS, K) | active units per seed "
             "(A_d > 0.01) | scale-free active units per seed | collapsed seeds | ‖m‖ after epoch 1 → last | "
             "log v_d range, last |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (activation, gauge, epochs, k), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        collapsed = sum(r["active_share"] == 0 for r in rs)
        lines.append(f"| {activation} | {gauge:g} | {epochs} | {', '.join(str(r['seed']) for r in rs)} | "
                     f"{mean_sd([r['elbo'] for r in rs])} | {mean_sd([r['log_px'] for r in rs])} ({k}) | "
                     f"{' / '.join(str(r['active_units']) for r in rs)} | "
                     f"{' / '.join(str(r['active_share']) for r in rs)} | {collapsed} of {len(rs)} | "
                     f"{statistics.mean(r['curve'][0]['mean_norm'] for r in rs):.1f} → "
                     f"{statistics.mean(r['mean_norm'] for r in rs):.1f} | "
                     f"{min(r['log_var_min'] for r in rs):.2f} … {max(r['log_var_max'] for r in rs):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", nargs="+", default=["tanh", "relu"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--gauges", nargs="+", type=float, default=[0.0, 1.0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--num-samples", type=int, default=100, help="K of the importance-sampled log p(x)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="write the table from --results into the write-up")
    parser.add_argument("--quick", action="store_true", help="one tanh run, 1 epoch on 500 images, K = 5; no file")
    parser.add_argument("--first-epoch", action="store_true",
                        help="per step of the first epoch: ‖m‖ and the decoder's saturated first-layer units")
    args = parser.parse_args()
    if args.report:
        doc = WRITEUP.read_text()
        WRITEUP.write_text(replace_between(doc, TABLE_START, TABLE_END, table(read_rows(args.results))))
        print(table(read_rows(args.results)))
        return
    split = load_split()
    if args.first_epoch:
        shown = (1, 2, 5, 10, 20, 45, 90)
        for activation in args.activations:
            for gauge in args.gauges:
                steps = first_epoch(activation, args.seeds[0], gauge, split)
                print(f"{activation} gauge {gauge:g} seed {args.seeds[0]}: " + "; ".join(
                    f"step {s['step']}: ‖m‖ {s['mean_norm']:.2f}, saturated {s['saturated']:.1%}"
                    for s in steps if s["step"] in shown), flush=True)
        return
    if args.quick:
        split = Split(split.train[:500], split.evaluate[:200], split.evaluate_name)
        row = run("tanh", 0, 1.0, 1, split, 5)
        print(table([row]))
        return
    for activation in args.activations:  # rows already in the store are not trained again
        for seed in args.seeds:
            for gauge in args.gauges:
                done = {(r["activation"], r["seed"], r["gauge"], r["epochs"]) for r in read_rows(args.results)}
                if (activation, seed, gauge, args.epochs) not in done:
                    append_row(args.results, run(activation, seed, gauge, args.epochs, split, args.num_samples))


if __name__ == "__main__":
    main()
