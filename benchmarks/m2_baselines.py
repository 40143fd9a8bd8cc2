"""What other classifiers make of M2's labels: the headroom above a logistic regression on the 8x8 digits.

For each seed, on the split `m2_balance.py` scores (the held-out digits, or with ``--validation V`` the first V
training digits), with the same labelled digits as ``configs/digits_m2.yaml`` (grey levels):

* ``logreg``, ``svm``      scikit-learn ``LogisticRegression`` (C = 1) and ``SVC`` (RBF) on the labelled pixels;
* ``spreading``            ``LabelSpreading`` (7-nearest-neighbour graph) over the pixels of every training
                           digit and the scored ones: a graph-based semi-supervised classifier on the same labels;
* ``m1_svm``, ``m1_spreading``  the same on M1's codes: the latent means of a VAE (``configs/digits_vae.yaml``
                           on grey levels, ``--m1-set`` overrides) fitted to the training digits (Kingma et al.'s
                           M1 features, the first stage of their M1+M2);
* ``all_logreg``, ``all_svm``   the supervised ceiling: every training digit's label.

    python benchmarks/m2_baselines.py --validation 180        # the validation slice (settings are chosen there)
    python benchmarks/m2_baselines.py                         # held out
    python benchmarks/m2_baselines.py --report                # the table of benchmarks/results/m2_baselines.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Dict, List, Sequence

import numpy as np
import pyro
import torch

from m2_balance import CONFIG, REPO, m2_config, pct
from pyro_vae.config.run import load_config
from pyro_vae.data import load_data
from pyro_vae.models import build_model
from pyro_vae.train import Trainer

RESULTS = REPO / "benchmarks" / "results" / "m2_baselines.jsonl"
M1_CONFIG = REPO / "configs" / "digits_vae.yaml"
M1_SET = ["data.binarize=none", "model.latent_dim=20", "model.network.hidden_dims=[500,500]", "train.epochs=100"]
COLUMNS = ("logreg", "svm", "spreading", "m1_svm", "m1_spreading", "all_logreg", "all_svm")


def scores(x, y, x_scored, y_scored, labeled: np.ndarray, methods: Sequence[str]) -> Dict[str, float]:
    """Accuracy on the scored points of each of ``methods``: ``logreg`` and ``svm`` (a logistic regression and an
    RBF SVM on the labelled points), ``spreading`` (label spreading, transductive over the training and scored
    points, only the labelled ones labelled)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading
    from sklearn.svm import SVC

    def spreading() -> float:
        partial = np.full(len(y) + len(y_scored), -1)
        partial[labeled] = y[labeled]
        fit = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=1000).fit(np.concatenate([x, x_scored]), partial)
        return float((fit.transduction_[len(y):] == y_scored).mean())

    fits = {"logreg": lambda: LogisticRegression(max_iter=5000).fit(x[labeled], y[labeled]).score(x_scored, y_scored),
            "svm": lambda: SVC().fit(x[labeled], y[labeled]).score(x_scored, y_scored), "spreading": spreading}
    return {name: fits[name]() for name in methods}


def m1_codes(data, fraction: float, seed: int, overrides: List[str]):
    """Latent means of the training and scored digits under a VAE fitted to the training digits (labels unused)."""
    config = load_config(M1_CONFIG, [f"seed={seed}", "train.progress=false", *M1_SET, *overrides])
    config = replace(config, data=replace(config.data, validation=fraction))
    vae_data = load_data(config.data, seed)
    if not torch.equal(vae_data.train_x, data.train_x):
        raise RuntimeError("the VAE's training digits differ from M2's: the splits must match")
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    model = build_model(config.model, vae_data.shape, vae_data.num_classes)
    Trainer(model, vae_data, config.train, seed=seed).fit()
    model.eval()
    with torch.no_grad():
        return [model.encode(x)[0].numpy() for x in (data.train_x, data.test_x)]


def run(seed: int, validation: int, m1_set: List[str]) -> Dict:
    config = m2_config([f"seed={seed}"], seed, validation)
    if config.data.binarize != "none":
        raise SystemExit(f"{CONFIG}: these baselines read grey levels, and data.binarize is {config.data.binarize!r}")
    data = load_data(config.data, seed)
    x, y = data.train_x.flatten(1).numpy(), data.train_y.numpy()
    x_scored, y_scored = data.test_x.flatten(1).numpy(), data.test_y.numpy()
    labeled = data.labeled.numpy()
    start = time.perf_counter()
    row = {"seed": seed, "validation": validation, "labeled": int(labeled.size), "scored": int(y_scored.size),
           **scores(x, y, x_scored, y_scored, labeled, ("logreg", "svm", "spreading"))}
    every = np.arange(len(y))
    row.update({f"all_{k}": v for k, v in scores(x, y, x_scored, y_scored, every, ("logreg", "svm")).items()})
    z, z_scored = m1_codes(data, config.data.validation, seed, m1_set)
    row.update({f"m1_{k}": v for k, v in scores(z, y, z_scored, y_scored, labeled, ("svm", "spreading")).items()})
    row.update({"m1_set": [*M1_SET, *m1_set], "seconds": round(time.perf_counter() - start, 1)})
    return {k: float(v) if isinstance(v, np.floating) else v for k, v in row.items()}


def table(rows: List[Dict]) -> str:
    groups: Dict[int, List[Dict]] = {}
    for r in rows:
        groups.setdefault(r["validation"], []).append(r)
    lines = ["| scored on | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for validation, rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        where = f"validation ({validation}), seeds {', '.join(str(r['seed']) for r in rs)}" if validation else \
            f"held-out, seeds {', '.join(str(r['seed']) for r in rs)}"
        lines.append(f"| {where} | " + " | ".join(pct([r[c] for r in rs]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--validation", type=int, default=0,
                        help="score on the training split's first V digits instead of the held-out ones")
    parser.add_argument("--m1-set", nargs="*", default=[], help="key=value overrides of the M1 VAE's config")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--report", action="store_true", help="print the table of the results file")
    args = parser.parse_args()
    if args.report:
        print(table([json.loads(line) for line in open(args.results) if line.strip()]))
        return
    for seed in args.seeds:
        row = run(seed, args.validation, args.m1_set)
        print(json.dumps(row), flush=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
