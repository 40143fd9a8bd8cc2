"""The flow prior's gauge term: where the codes sit after each epoch, with and without it.

The setting is the likelihood benchmark's flow row (``configs/mnist_likelihood.yaml`` with
``model.prior=flow``, 2 affine autoregressive layers of [200, 200], a 784-200-200-50 tanh MLP, Adam 1e-3,
batch 100, dynamic binarization), trained by the library's Trainer on benchmarks/mnist_loop.py's 9,000 training
images. After every epoch it records, on the first 1,000 *training* images (the held-out images are not read):

* ``mean_norm``: ‖mean_x μ(x)‖, how far the codes' centre has moved from the origin;
* ``spread_max``: the largest per-dim standard deviation of the aggregate posterior, √(Var_x μ_d + E_x σ_d²);
* ``active_units``: dims with Var_x(μ_d) > 0.01 (Burda et al.);
* ``saturated``: the share of the decoder's first-layer tanh units with |tanh| > 0.99 at the last training step.

    python benchmarks/flow_gauge.py --epochs 10 --gauges 0 1 --seeds 0    # rows into results/flow_gauge.jsonl
    python benchmarks/flow_gauge.py --report                             # the table into flow_gauge.md
"""

from __future__ import annotations

import argparse
import time
from typing import Dict, List

import pyro
import torch

from mnist_loop import REPO, append_row, load_split, read_rows  # first: it puts this checkout's pyro_vae on the path

from likelihood import ROWS, run_config
from sweep_report import replace_between
from pyro_vae.data import ImageData
from pyro_vae.models import build_model
from pyro_vae.train import Trainer

RESULTS = REPO / "benchmarks" / "results" / "flow_gauge.jsonl"
WRITEUP = REPO / "benchmarks" / "flow_gauge.md"
TABLE_START, TABLE_END = "<!-- flow-gauge-table:start -->", "<!-- flow-gauge-table:end -->"
PROBE = 1000  # training images the codes are read on


def run(gauge: float, seed: int, epochs: int) -> Dict:
    """One seeded run of the flow row with ``model.prior.gauge=gauge``: the per-epoch state of its codes."""
    split = load_split()
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    config = run_config([*ROWS["flow"], f"model.prior.gauge={gauge}", f"seed={seed}", "train.progress=false"])
    model = build_model(config.model, tuple(split.train.shape[1:]), 10)
    data = ImageData("mnist", split.train, torch.zeros(split.train.shape[0], dtype=torch.long),
                     split.train[:1], torch.zeros(1, dtype=torch.long), 10, binarize="dynamic")
    trainer = Trainer(model, data, config.train, seed=seed)
    trainer.generator = torch.Generator().manual_seed(seed)
    saturated: List[float] = []

    def hook(layer: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if layer.training:
            saturated.append(float((torch.tanh(output.detach()).abs() > 0.99).float().mean()))

    model.decoder.body[0].register_forward_hook(hook)
    probe, curve, start = split.train[:PROBE], [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        trainer.train_epoch()
        model.eval()
        with torch.no_grad():
            loc, scale = model.encode(probe)
        spread = loc.var(0)
        curve.append({"epoch": epoch, "mean_norm": float(loc.mean(0).norm()),
                      "spread_max": float((spread + scale.pow(2).mean(0)).sqrt().max()),
                      "active_units": int((spread > 0.01).sum()), "saturated": saturated[-1]})
        model.train()
        print(f"  gauge {gauge} seed {seed} epoch {epoch}: {curve[-1]}", flush=True)
    return {"gauge": gauge, "seed": seed, "epochs": epochs, **curve[-1], "curve": curve,
            "seconds": time.perf_counter() - start}


def table(rows: List[Dict]) -> str:
    lines = ["| gauge | seed | epochs | ‖mean μ‖ after epoch 1 → last | largest code sd, last | active units, last "
             "| saturated decoder units, last |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["gauge"], r["seed"], r["epochs"])):
        lines.append(f"| {r['gauge']:g} | {r['seed']} | {r['epochs']} | {r['curve'][0]['mean_norm']:.2f} → "
                     f"{r['mean_norm']:.2f} | {r['spread_max']:.2f} | {r['active_units']} | {r['saturated']:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--gauges", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--report", action="store_true", help="only the table, from the stored rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.report:
        done = {(r["gauge"], r["seed"], r["epochs"]) for r in read_rows(RESULTS)}
        for gauge in args.gauges:
            for seed in args.seeds:
                if (gauge, seed, args.epochs) not in done:
                    append_row(RESULTS, run(gauge, seed, args.epochs))
    text = table(read_rows(RESULTS))
    print(text)
    if WRITEUP.exists():
        WRITEUP.write_text(replace_between(WRITEUP.read_text(), TABLE_START, TABLE_END, text))


if __name__ == "__main__":
    main()
