"""Priors on real MNIST: N(0, I) vs Gaussian mixture vs VampPrior vs flow, same nets, data and budget.

Trains ``configs/mnist_{vae,gmm,vamp,flow}.yaml`` (9,000 train / 1,000 held out, dynamic binarization,
MLP 512-256, latent 16) for ``--epochs`` each and reports on the held-out images the ELBO and the
importance-sampled log p(x) ≈ log (1/K) Σ_k p(x, z_k)/q(z_k|x) (``elbo_and_iwae``, K = ``--num-samples``),
plus the GMM run's clustering accuracy. Writes one JSON per prior, a markdown table and a comparison figure.

    python benchmarks/priors_mnist.py --epochs 10 --num-samples 500 --out benchmarks/results/priors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyro
import torch

from pyro_vae.compare import compare_runs
from pyro_vae.evaluation.bounds import elbo_and_iwae
from pyro_vae.evaluation.clustering import clustering_metrics
from pyro_vae.run import load_run, train

REPO = Path(__file__).resolve().parents[1]
PRIORS = {"normal": "mnist_vae.yaml", "gmm": "mnist_gmm.yaml", "vamp": "mnist_vamp.yaml", "flow": "mnist_flow.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=1000, help="K for the importance-sampled log p(x)")
    parser.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    parser.add_argument("--out", default="benchmarks/results/priors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.priors:
        run_dir = out / f"run-{name}"
        if (run_dir / "model.pt").exists():
            run = load_run(run_dir)
            seconds = None
        else:
            start = time.perf_counter()
            run = train(REPO / "configs" / PRIORS[name], run_dir,
                        [f"train.epochs={args.epochs}", "train.progress=false"])
            seconds = time.perf_counter() - start
        run.model.eval()
        pyro.set_rng_seed(0)
        start = time.perf_counter()
        bounds = elbo_and_iwae(run.model, run.data(), num_samples=args.num_samples, batch_size=100)
        row = {"prior": name, "epochs": args.epochs, "train_seconds": seconds,
               "eval_seconds": time.perf_counter() - start, "num_samples": args.num_samples,
               "test_elbo": bounds["elbo"], "test_log_px": bounds["iwae"],
               "num_params": sum(p.numel() for p in run.model.parameters()),
               **clustering_metrics(run.model, run.data())}
        (out / f"{name}.json").write_text(json.dumps(row, indent=2))
        print(json.dumps(row), flush=True)
    runs = [out / f"run-{name}" for name in args.priors]
    table = compare_runs(runs, out / "priors_compare.png", names=args.priors)
    (out / "priors_table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
