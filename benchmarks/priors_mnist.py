"""Priors on real MNIST: N(0, I) vs Gaussian mixture vs VampPrior vs flow, same nets, data and budget.

A sweep over ``model.prior`` (each value the prior of ``configs/mnist_{vae,gmm,vamp,flow}.yaml``, so the
configs stay the one place the priors are defined) × ``--seeds``, every run evaluated with K =
``--num-samples`` importance samples: 9,000 train / 1,000 held out, dynamic binarization, MLP 512-256,
latent 16, ``--epochs`` each. The report step reads the sweep's ``summary.csv`` and writes
``priors_table.md`` (held-out ELBO, importance-sampled log p(x), its gain over N(0, I), cluster accuracy,
seconds; mean ± sd over seeds) and ``priors_compare.png`` (the ELBO curves of the first seed's runs).
Rerunning resumes: finished runs are kept.

    python benchmarks/priors_mnist.py --epochs 10 --num-samples 500 --out benchmarks/results/priors
    python benchmarks/priors_mnist.py --epochs 10 --seeds 0 1 2 --workers 2 --out benchmarks/results/priors
    python benchmarks/priors_mnist.py --report --out benchmarks/results/priors
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import yaml

from sweep_report import REPO, read_summary, table, values

from pyro_vae.compare import compare_runs
from pyro_vae.config.loading import read_yaml
from pyro_vae.experiments.sweep import sweep

PRIORS = {"normal": "mnist_vae.yaml", "gmm": "mnist_gmm.yaml", "vamp": "mnist_vamp.yaml", "flow": "mnist_flow.yaml"}
MNIST_ROOT = Path(os.environ.get("PYRO_VAE_MNIST", REPO.parent / "shared" / "data" / "MNIST" / "raw"))


def prior_value(name: str) -> str:
    """The prior of ``configs/<PRIORS[name]>`` as a one-line YAML value (``{type: gmm, num_components: 10, ...}``)."""
    prior = read_yaml(REPO / "configs" / PRIORS[name])["model"]["prior"]
    return prior if isinstance(prior, str) else yaml.safe_dump(prior, default_flow_style=True, width=10_000,
                                                                  sort_keys=False).strip()


def prior_type(value: str) -> str:
    """``{type: gmm, ...}`` -> ``gmm``; ``normal`` -> ``normal``."""
    parsed = yaml.safe_load(value)
    return parsed["type"] if isinstance(parsed, dict) else str(parsed)


def report(out: Path) -> str:
    rows = read_summary(out)
    normal = [r for r in rows if prior_type(r["model.prior"]) == "normal"]
    base = statistics.fmean(values(normal, "test_log_likelihood")) if values(normal, "test_log_likelihood") else None
    for r in rows:  # the gain in log p(x) over N(0, I)'s mean
        if base is not None and r.get("test_log_likelihood"):
            r["gain"] = str(float(r["test_log_likelihood"]) - base)
    md = table(rows, ["model.prior"], [("held-out ELBO", "test_elbo", 1.0),
                                     ("held-out log p(x)", "test_log_likelihood", 1.0),
                                     ("Δ log p(x) vs N(0,I)", "gain", 1.0),
                                     ("cluster accuracy %", "cluster_accuracy", 100.0),
                                     ("train seconds", "seconds", 1.0)], names=lambda v: f"`{prior_type(v)}`")
    (out / "priors_table.md").write_text(md)
    first = {}
    for r in rows:
        if r["status"] == "done":
            first.setdefault(prior_type(r["model.prior"]), out / r["run"])
    if len(first) >= 2:
        compare_runs(list(first.values()), out / "priors_compare.png", names=list(first))
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=1000, help="K for the importance-sampled log p(x)")
    parser.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default: the CPUs available)")
    parser.add_argument("--out", default="benchmarks/results/priors")
    parser.add_argument("--report", action="store_true", help="only the table and figure, from summary.csv")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run, e.g. data.limit=2000")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.report:
        grid = [f"model.prior={','.join(prior_value(p) for p in args.priors)}",
                f"seed={','.join(map(str, args.seeds))}", f"train.epochs={args.epochs}", f"data.root={MNIST_ROOT}",
                *args.overrides]
        sweep(REPO / "configs" / PRIORS["normal"], grid, out, args.workers, args.num_samples,
              keep=("model.prior", "seed"))
    print(report(out))


if __name__ == "__main__":
    main()
