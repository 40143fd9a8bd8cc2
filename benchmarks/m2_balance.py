"""M2 on few labels, seed by seed: the held-out accuracy beside two logistic regressions on the same labels, and
the balance of q(y|x) on the unlabelled training points after every epoch.

With ``data.binarize: dynamic`` the held-out images are binarized once (seeded) and the model is scored on that
one draw; the run also scores the classifier on the held-out grey levels and over 20 fresh binarizations.

For each seed: ``configs/digits_m2.yaml`` (or the config given) with ``data.labeled`` labels trains with the
library's trainer; after each epoch it records the held-out accuracy, the accuracy on the unlabelled training
points, and the class-marginal of the classifier there, q̄(y) = mean_x q(y|x): its largest and smallest share
and KL(q̄ ‖ uniform) (0 when the predicted classes are balanced). The baselines are scikit-learn
``LogisticRegression`` on the grey-level pixels of the same labelled points, C = 1 and C chosen by 5-fold
cross-validation on those labels (``LogisticRegressionCV``).

    python benchmarks/m2_balance.py --seeds 0 1 2                                  # configs/digits_m2.yaml
    python benchmarks/m2_balance.py --seeds 0 1 2 --set model.balance=0            # key=value overrides
    python benchmarks/m2_balance.py --seeds 0 1 2 --validation 180 --set model.alpha=1  # choose on validation
    python benchmarks/m2_balance.py --report benchmarks/results/m2_balance*.jsonl  # the tables of the write-up
    python benchmarks/m2_balance.py --quick                                        # 2 epochs, seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from dataclasses import replace
from typing import Dict, List, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's pyro_vae, not an installed copy

import pyro  # noqa: E402

from pyro_vae.config.run import load_config  # noqa: E402
from pyro_vae.data import RowData, load_data  # noqa: E402
from pyro_vae.data.labels import hidden_indices  # noqa: E402
from pyro_vae.evaluation.classification import classification_metrics  # noqa: E402
from pyro_vae.models import build_model  # noqa: E402
from pyro_vae.train import Trainer  # noqa: E402
from pyro_vae.train.callbacks import Callback  # noqa: E402

CONFIG = REPO / "configs" / "digits_m2.yaml"
RESULTS = REPO / "benchmarks" / "results" / "m2_balance.jsonl"


def logistic_baselines(data, grey, seed: int) -> Dict[str, float]:
    """Held-out accuracy of logistic regressions fitted to the labelled points' grey-level pixels, C = 1 and C by
    5-fold CV on those labels, scored on the held-out images as the model sees them (``data``'s test split:
    binarized once) and on their grey levels (``_grey``)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    labeled = data.labeled.numpy()
    x, y = grey.train_x.flatten(1).numpy()[labeled], grey.train_y.numpy()[labeled]
    fits = {"logreg_c1": LogisticRegression(C=1.0, max_iter=5000).fit(x, y),
            "logreg_cv": LogisticRegressionCV(Cs=np.logspace(-3, 3, 13), cv=5, max_iter=5000).fit(x, y)}
    out = {"logreg_cv_c": float(fits["logreg_cv"].C_[0])}
    for name, fit in fits.items():
        out[name] = float(fit.score(data.test_x.flatten(1).numpy(), data.test_y.numpy()))
        out[f"{name}_grey"] = float(fit.score(grey.test_x.flatten(1).numpy(), grey.test_y.numpy()))
    return out


@torch.no_grad()
def held_out_views(model, grey, seed: int, draws: int = 20) -> Dict[str, float]:
    """The classifier's accuracy on the grey held-out images and its mean over ``draws`` fresh binarizations."""
    model.eval()
    x, y = grey.test_x, grey.test_y
    generator = torch.Generator().manual_seed(seed + 1000)
    redrawn = [float((model.class_probs(torch.bernoulli(x, generator=generator)).argmax(-1) == y).float().mean())
               for _ in range(draws)]
    return {"accuracy_grey": float((model.class_probs(x).argmax(-1) == y).float().mean()),
            "accuracy_redrawn": float(np.mean(redrawn)), "accuracy_redrawn_sd": float(np.std(redrawn))}


@torch.no_grad()
def balance(model, x: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    """Accuracy on ``x`` and the class-marginal q̄(y) = mean_x q(y|x): max and min share, KL(q̄ ‖ uniform)."""
    model.eval()
    probs = model.class_probs(x)
    marginal = probs.mean(0)
    k = marginal.numel()
    return {"unlabeled_accuracy": float((probs.argmax(-1) == y).float().mean()),
            "share_max": float(marginal.max()), "share_min": float(marginal.min()),
            "kl_uniform": float((marginal * (marginal * k).log()).sum()),
            "mean_entropy": float(-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean() / math.log(k))}


def splits(config, seed: int) -> Tuple[RowData, RowData]:
    """(the data the model trains and is scored on, the same split with grey-level held-out images: the
    held-out images before their one binarization)."""
    data = load_data(config.data, seed)
    return data, data if config.data.binarize == "none" else load_data(replace(config.data, binarize="none"), seed)


def validation_fraction(config, seed: int, size: int) -> float:
    """The ``data.validation`` fraction that cuts the first ``size`` of the (shuffled) training points off as
    the scored split, as ``benchmarks/m2_validation.py`` does; the labels are then chosen among the rest."""
    return size / load_data(replace(config.data, labeled=None, binarize="none"), seed).train_x.shape[0]


def m2_config(settings: List[str], seed: int, validation: int = 0):
    """``CONFIG`` with ``settings``; with ``validation`` > 0 its first ``validation`` training points become the
    scored split (``data.validation``)."""
    config = load_config(CONFIG, settings)
    if validation:
        config = load_config(CONFIG, [*settings, f"data.validation={validation_fraction(config, seed, validation)!r}"])
    return config


def run(seed: int, overrides: List[str], epochs: int = 0, validation: int = 0) -> Dict:
    settings = [*overrides, f"seed={seed}", "train.progress=false"] + ([f"train.epochs={epochs}"] if epochs else [])
    config = m2_config(settings, seed, validation)
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    data, grey = splits(config, seed)
    model = build_model(config.model, data.shape, data.num_classes)
    trainer = Trainer(model, data, config.train, seed=seed)
    hidden = hidden_indices(data.train_x.shape[0], data.labeled)
    x_u, y_u = data.train_x[hidden], data.train_y[hidden]
    curve: List[Dict] = []

    class Curve(Callback):
        def on_epoch_end(self, t: Trainer, metrics) -> None:
            point = {"epoch": metrics.epoch, "accuracy": classification_metrics(t.model, t.data)["classifier_accuracy"],
                     **balance(t.model, x_u, y_u)}
            curve.append(point)
            print(f"seed {seed} {' '.join(overrides)}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in point.items()), flush=True)

    start = time.perf_counter()
    trainer.fit([Curve()])
    seconds = round(time.perf_counter() - start, 1)
    return {"config": str(CONFIG.relative_to(REPO)), "overrides": overrides, "seed": seed, "validation": validation,
            "labeled": int(data.labeled.numel()), "epochs": config.train.epochs, **curve[-1],
            **held_out_views(model, grey, seed), **logistic_baselines(data, grey, seed), "curve": curve,
            "seconds": seconds}


def pct(values: List[float]) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values)


def pairs(rs: List[Dict], scored: str, grey: str) -> str:
    return " / ".join(f"{100 * r[scored]:.1f} ({100 * r[grey]:.1f})" for r in rs)


def table(rows: List[Dict]) -> str:
    """One line per (overrides, validation): each seed's accuracies (%) and the balance of q(y|x)."""
    groups: Dict[tuple, List[Dict]] = {}
    for r in rows:
        groups.setdefault((r["file"], r.get("validation", 0), " ".join(r["overrides"]) or "(config as is)"), []).append(r)
    lines = ["| results | scored on | overrides | seeds | M2, scored split | M2, grey levels | M2, mean of 20 binarizations | "
             "logreg C=1: scored (grey) | logreg CV: scored (grey) | q̄(y) share min–max | KL(q̄ ‖ uniform) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (file, validation, overrides), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        where = f"validation ({validation})" if validation else "held-out"
        lines.append(
            f"| {file} | {where} | {overrides} | {', '.join(str(r['seed']) for r in rs)} | {pct([r['accuracy'] for r in rs])} | "
            f"{pct([r['accuracy_grey'] for r in rs])} | {pct([r['accuracy_redrawn'] for r in rs])} | "
            f"{pairs(rs, 'logreg_c1', 'logreg_c1_grey')} | {pairs(rs, 'logreg_cv', 'logreg_cv_grey')} | "
            f"{100 * min(r['share_min'] for r in rs):.1f}–{100 * max(r['share_max'] for r in rs):.1f} % | "
            f"≤ {max(r['kl_uniform'] for r in rs):.3f} |")
    return "\n".join(lines)


def main() -> None:
    global CONFIG
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides of the config")
    parser.add_argument("--validation", type=int, default=0,
                        help="score on the training split's first V points instead of the held-out split")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="seed 0, 2 epochs, nothing written")
    parser.add_argument("--report", nargs="*", type=Path, help="print the table of these results files")
    args = parser.parse_args()
    CONFIG = args.config.resolve()
    if args.report is not None:
        rows = [{**json.loads(line), "file": path.name} for path in (args.report or [args.results])
                for line in path.read_text().splitlines() if line.strip()]
        print(table(rows))
        return
    if args.quick:
        print(json.dumps({k: v for k, v in run(0, args.set, 2, args.validation).items() if k != "curve"}))
        return
    for seed in args.seeds:
        row = run(seed, args.set, validation=args.validation)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
