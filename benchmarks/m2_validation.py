"""Choose M2's settings on a validation slice of the training split (never the held-out test split).

A sweep of the config over ``--labeled`` label counts × ``--seeds`` × any ``key=a,b`` axes given (e.g.
``model.alpha=1,5``), every run with ``data.validation`` set: that fraction of the training split (default
1/9: 1,000 of MNIST's 9,000 training points) is held out and scored, ``data.labeled`` labels are chosen among
the remaining training points, and the test split is not read. Each run is evaluated with
``--num-samples`` importance samples; the report step reads the sweep's ``summary.csv`` and writes
``m2_validation.md``: the classifier's validation accuracy after the last epoch and the validation ELBO, mean
± sd over seeds per setting (per-epoch ELBO curves: each run's ``metrics.jsonl``).

    python benchmarks/m2_validation.py configs/mnist_m2.yaml data.root=PATH/TO/MNIST/raw model.alpha=1,5 \\
        --labeled 100 1000 --seeds 0 --out benchmarks/results/m2_validation
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep_report import read_summary, swept_keys, table

from pyro_vae.experiments.sweep import sweep


def report(out: Path) -> str:
    rows = read_summary(out)
    md = table(rows, swept_keys(rows), [("validation accuracy %", "classifier_accuracy", 100.0),
                                        ("validation ELBO", "test_elbo", 1.0), ("seconds", "seconds", 1.0)])
    (out / "m2_validation.md").write_text(md)
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*", help="key=value for every run, key=a,b,c an axis of the sweep")
    parser.add_argument("--labeled", type=int, nargs="+", default=[100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--validation", type=float, default=1 / 9, help="fraction of the training split")
    parser.add_argument("--num-samples", type=int, default=10, help="K importance samples of the evaluation")
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default: the CPUs available)")
    parser.add_argument("--out", default="benchmarks/results/m2_validation")
    parser.add_argument("--report", action="store_true", help="only the table, from summary.csv")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.report:
        grid = [*args.overrides, f"data.labeled={','.join(map(str, args.labeled))}",
                f"seed={','.join(map(str, args.seeds))}", f"data.validation={args.validation}"]
        sweep(args.config, grid, out, args.workers, args.num_samples, keep=("data.labeled", "seed"))
    print(report(out))


if __name__ == "__main__":
    main()
