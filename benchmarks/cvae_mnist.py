"""Quadrant completion on real MNIST: conditional −log p(x|c) of the CVAE vs the deterministic baseline.

For 1, 2 and 3 visible quadrants: fit the baseline x̂ = f(c), fit the CVAE (its decoder started at
the baseline), and report on the 1,000 held-out images the per-image −log p(x|c) over the hidden
pixels: the baseline's Bernoulli NLL, and the CVAE's importance-sampled estimate
−log (1/K) Σ_k p(x, z_k|c) / q(z_k|x, c) with K samples (an upper bound on the CVAE's −log p(x|c)).
Also writes the completions figure (input, truth, baseline, CVAE samples).

    python benchmarks/cvae_mnist.py --epochs 10 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import pyro
import torch

from pyro_vae import RunConfig, load_config, plots
from pyro_vae.config.schema import from_dict, to_dict
from pyro_vae.data import load_data
from pyro_vae.data.quadrants import show_hidden
from pyro_vae.infer import log_weights
from pyro_vae.models import build_model
from pyro_vae.models.baseline import init_from_baseline
from pyro_vae.train import Trainer

REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def neg_log_lik(model, data, num_samples: int, batch_size: int = 200) -> float:
    """Mean over held-out images of −log p(x|c) = −logsumexp_k log w_k + log K (nats per image)."""
    model.eval()
    total, count = 0.0, 0
    for x, y in data.batches("test", batch_size):
        lw = log_weights(model.model, model.guide, x, y, num_samples=num_samples, max_plate_nesting=1).total
        total -= (torch.logsumexp(lw, 0) - math.log(num_samples)).sum().item()
        count += x.shape[0]
    return total / count


def fit(model, data, config) -> float:
    pyro.clear_param_store()  # every model registers as "vae": never let two share parameters
    start = time.perf_counter()
    Trainer(model, data, config.train, seed=config.seed).fit()
    return time.perf_counter() - start


def baseline_config(cfg: RunConfig) -> RunConfig:
    """The same run with the CVAE replaced by the baseline (same condition, network and likelihood)."""
    d = to_dict(cfg)
    keep = ("condition", "visible", "network", "likelihood")
    d["model"] = {"type": "baseline", **{k: d["model"][k] for k in keep}}
    return from_dict(RunConfig, d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the CVAE and of the baseline")
    parser.add_argument("--num-samples", type=int, default=100, help="importance samples K per test image")
    parser.add_argument("--visible", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--no-init", action="store_true", help="do not start the CVAE decoder at the baseline")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for visible in args.visible:
        common = [f"model.visible={visible}", f"train.epochs={args.epochs}", "train.progress=false"]
        cfg = load_config(REPO / "configs" / "mnist_cvae.yaml", common)
        cfg.data.root = str((REPO / cfg.data.root).resolve())  # the config's root is relative to the repo
        base_cfg = baseline_config(cfg)
        pyro.set_rng_seed(cfg.seed)
        data = load_data(cfg.data, cfg.seed)

        baseline = build_model(base_cfg.model, data.shape, data.num_classes)
        t_base = fit(baseline, data, base_cfg)
        nll_base = neg_log_lik(baseline, data, 1)

        cvae = build_model(cfg.model, data.shape, data.num_classes)
        if not args.no_init:
            init_from_baseline(cvae, baseline)
        t_cvae = fit(cvae, data, cfg)
        pyro.set_rng_seed(cfg.seed)
        nll_cvae = neg_log_lik(cvae, data, args.num_samples)
        row = {"visible": visible, "baseline_nll": nll_base, "cvae_nll": nll_cvae, "baseline_seconds": t_base,
               "cvae_seconds": t_cvae, "epochs": args.epochs, "num_samples": args.num_samples,
               "init_from_baseline": not args.no_init, "num_train": int(data.train_x.shape[0]),
               "num_test": int(data.test_x.shape[0])}
        rows.append(row)
        print(json.dumps(row), flush=True)

        x = data.test_x[:10]
        with torch.no_grad():
            samples = cvae.complete(x, 3)
            figure = [("input", show_hidden(x, cvae.cond.visible)), ("truth", x),
                      ("baseline", baseline.reconstruct(x))]
            figure += [(f"CVAE {i + 1}", s) for i, s in enumerate(samples)]
        plots.save_labelled_rows(figure, out / f"cvae_completions_{visible}q.png",
                                 title=f"{visible} visible quadrant(s): hidden pixels grey in the input")
    (out / f"cvae_mnist_{''.join(map(str, args.visible))}q.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
