"""Imputation benchmark: pyro-vae's ``columns`` likelihood with the MIWAE bound against scikit-learn's imputers.

Tables bundled with scikit-learn (breast-cancer 569×30, wine 178×13, diabetes 442×10) with 20 % and 50 % of the
cells removed completely at random (MCAR; a row never loses every cell), 3 seeds (a seed draws the mask, the
split and the initialisation). Reported: RMSE over the removed cells in standardized units (each column scaled
by the complete table's mean and std, the same for every method), for

* ``mean``       the observed column mean;
* ``knn``        ``KNNImputer`` (5 neighbours) on standardized columns;
* ``iterative``  ``IterativeImputer`` (Bayesian ridge chains, ``max_iter=25``);
* ``pyro_vae``   a VAE with ``model.likelihood: columns`` trained with the importance-weighted bound (MIWAE) on
  the observed cells, then ``Run.impute`` (importance-weighted conditional mean, K = 2000).

The VAE's settings (latent width, hidden widths) are chosen per table and rate on a **validation mask**: 10 %
of the *observed* cells of seed 0's table hidden as well; the candidate with the lowest RMSE on those cells is
used for every seed. The removed cells that are reported are never looked at when choosing.

A mixed-type table (statsmodels' ``anes96``: party identification, education and self-placement as categorical
columns with their names, the vote as binary, TV-news days and age as counts, log-population continuous) is
reported with accuracy on the categorical and binary cells and RMSE on the others, against mode/mean and
``IterativeImputer`` (codes rounded to the nearest level).

    python benchmarks/imputation.py                 # everything (cached in results/imputation/imputation.json)
    python benchmarks/imputation.py --quick         # a smoke test: wine, 20 %, one seed, a few epochs
    python benchmarks/imputation.py --report        # the table from the cache
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's pyro_vae, not an installed copy
OUT = REPO / "benchmarks" / "results" / "imputation"
TABLES = ("breast_cancer", "wine", "diabetes")
RATES = (0.5, 0.2)
SEEDS = (0, 1, 2)
VALIDATION_FRACTION = 0.1
IMPUTE_SAMPLES = 2000
#: candidate settings of the VAE (overrides), chosen per table and rate on the validation mask
CANDIDATES: Dict[str, List[str]] = {
    "d5_h64": ["model.latent_dim=5", "model.network.hidden_dims=[64,64]", "train.epochs=200"],
    "d10_h128": ["model.latent_dim=10", "model.network.hidden_dims=[128,128]", "train.epochs=200"],
    "d20_h256": ["model.latent_dim=20", "model.network.hidden_dims=[256,256]", "train.epochs=200"],
}
BASE = ["data.type=table", "data.missing=mask", "data.standardize=true", "data.test_fraction=0.05",
        "model.type=vae", "model.likelihood=columns", "model.network.activation=tanh",
        "train.objective={type: iwae, num_particles: 20}", "train.batch_size=64", "train.lr=0.001",
        "train.progress=false", "train.eval_samples=2", "train.num_images=8"]


def load_table(name: str) -> Tuple[List[str], np.ndarray]:
    import sklearn.datasets as D

    bunch = getattr(D, f"load_{name}")()
    return [str(c).replace(" ", "_") for c in bunch.feature_names], bunch.data.astype(np.float64)


def mcar(shape: Tuple[int, int], rate: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of removed cells, each removed with probability ``rate``; every row keeps a cell."""
    removed = rng.random(shape) < rate
    for i in np.flatnonzero(removed.all(1)):
        removed[i, rng.integers(shape[1])] = False
    return removed


def rmse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a[mask] - b[mask]) ** 2)))


def baselines(x: np.ndarray, holes: np.ndarray, seed: int) -> Dict[str, np.ndarray]:
    """Mean, KNN and iterative imputations of ``x`` (standardized) with NaN at ``holes``."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    data = np.where(holes, np.nan, x)
    return {"mean": SimpleImputer().fit_transform(data),
            "knn": KNNImputer(n_neighbors=5).fit_transform(data),
            "iterative": IterativeImputer(max_iter=25, random_state=seed).fit_transform(data)}


def vae_impute(names: List[str], x_raw: np.ndarray, holes: np.ndarray, seed: int, extra: List[str],
               types: Dict[str, str] = None, levels: Dict[str, List[str]] = None) -> np.ndarray:
    """Train pyro-vae on the table with holes, return its imputation in the raw units (codes for categories)."""
    import pandas as pd

    from pyro_vae import load_config, train

    frame = pd.DataFrame({n: [None if h else repr_cell(v, n, levels) for v, h in zip(x_raw[:, j], holes[:, j])]
                          for j, n in enumerate(names)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        frame.to_csv(path, index=False)
        overrides = [*BASE, f"data.path={path}", f"seed={seed}", *extra]
        if types:
            overrides.append("data.column_types={" + ", ".join(f"{k}: {v}" for k, v in types.items()) + "}")
        run = train(load_config(None, overrides), Path(tmp) / "run")
        filled = run.impute(frame, num_samples=IMPUTE_SAMPLES)
    out = np.empty_like(x_raw)
    for j, n in enumerate(names):
        column = filled[n].tolist()
        out[:, j] = [levels[n].index(v) if levels and n in levels else float(v) for v in column]
    return out


def repr_cell(value: float, name: str, levels: Dict[str, List[str]] = None) -> str:
    if levels and name in levels:
        return levels[name][int(value)]
    return repr(float(value))


def standardized(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1
    return (x - mean) / std, mean, std


def select(name: str, rate: float) -> Dict[str, float]:
    """Validation RMSE of each candidate on seed 0's table: 10 % of its observed cells hidden as well."""
    names, x_raw = load_table(name)
    rng = np.random.default_rng(0)
    holes = mcar(x_raw.shape, rate, rng)
    validation = (rng.random(x_raw.shape) < VALIDATION_FRACTION) & ~holes
    validation[(holes | validation).all(1)] = False  # never a row with nothing left
    z, mean, std = standardized(x_raw)
    scores = {}
    for key, extra in CANDIDATES.items():
        filled = vae_impute(names, x_raw, holes | validation, 0, extra)
        scores[key] = rmse((filled - mean) / std, z, validation)
        print(f"  select {name} {rate:.0%} {key}: validation RMSE {scores[key]:.4f}", flush=True)
    return scores


def measure(name: str, rate: float, seed: int, extra: List[str]) -> Dict[str, float]:
    names, x_raw = load_table(name)
    rng = np.random.default_rng(seed)
    holes = mcar(x_raw.shape, rate, rng)
    z, mean, std = standardized(x_raw)
    row = {k: rmse(v, z, holes) for k, v in baselines(z, holes, seed).items()}
    row["pyro_vae"] = rmse((vae_impute(names, x_raw, holes, seed, extra) - mean) / std, z, holes)
    return row


# ---- the mixed-type table ----
PID = ["strong Democrat", "weak Democrat", "independent Democrat", "independent", "independent Republican",
       "weak Republican", "strong Republican"]
EDUC = ["grade 1-8", "some high school", "high school", "some college", "community college", "BA", "postgraduate"]
PLACE = ["extremely liberal", "liberal", "slightly liberal", "moderate", "slightly conservative", "conservative",
         "extremely conservative"]


def mixed_table() -> Tuple[List[str], np.ndarray, Dict[str, str], Dict[str, List[str]]]:
    from statsmodels.datasets import anes96

    df = anes96.load_pandas().data
    x = np.stack([df["logpopul"], df["TVnews"], df["age"], df["vote"], df["PID"], df["educ"] - 1,
                  df["selfLR"] - 1], 1).astype(np.float64)
    names = ["logpopul", "TVnews", "age", "vote", "party", "education", "self_placement"]
    types = {"logpopul": "continuous", "TVnews": "count", "age": "count", "vote": "binary",
             "party": "categorical", "education": "categorical", "self_placement": "categorical"}
    levels = {"party": PID, "education": EDUC, "self_placement": PLACE}
    return names, x, types, levels


def measure_mixed(rate: float, seed: int, extra: List[str]) -> Dict[str, float]:
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, SimpleImputer

    names, x, types, levels = mixed_table()
    holes = mcar(x.shape, rate, np.random.default_rng(seed))
    discrete = np.array([types[n] in ("binary", "categorical") for n in names])
    z, mean, std = standardized(x)
    data = np.where(holes, np.nan, x)
    methods = {"mode_mean": np.where(discrete, SimpleImputer(strategy="most_frequent").fit_transform(data),
                                     SimpleImputer().fit_transform(data)),
               "iterative": IterativeImputer(max_iter=25, random_state=seed).fit_transform(data),
               "pyro_vae": vae_impute(names, x, holes, seed, extra, types, levels)}
    top = x.max(0)
    row = {}
    for method, filled in methods.items():
        filled = np.where(discrete, np.clip(np.round(filled), 0, top), filled)
        cells = holes & discrete
        row[f"{method}_accuracy"] = float((filled[cells] == x[cells]).mean())
        row[f"{method}_rmse"] = rmse((filled - mean) / std, z, holes & ~discrete)
    return row


def report(results: Dict[str, Any]) -> str:
    lines = ["| table | missing | mean | KNN | Iterative | pyro-vae (setting) |", "|---|---|---|---|---|---|"]
    for name in TABLES:
        for rate in RATES:
            rows = [results[k] for k in (f"{name}/{rate}/{s}" for s in SEEDS) if k in results]
            if not rows:
                continue
            cell = {m: f"{np.mean([r[m] for r in rows]):.3f} ± {np.std([r[m] for r in rows]):.3f}"
                    for m in ("mean", "knn", "iterative", "pyro_vae")}
            lines.append(f"| {name} | {rate:.0%} | {cell['mean']} | {cell['knn']} | {cell['iterative']} | "
                         f"{cell['pyro_vae']} ({results.get(f'choice/{name}/{rate}', '?')}) |")
    mixed = [results[k] for k in (f"anes96/0.3/{s}" for s in SEEDS) if k in results]
    if mixed:
        lines += ["", "| anes96, 30 % missing | accuracy (categorical + binary) | RMSE (continuous + counts) |",
                  "|---|---|---|"]
        for method in ("mode_mean", "iterative", "pyro_vae"):
            acc = [r[f"{method}_accuracy"] for r in mixed]
            err = [r[f"{method}_rmse"] for r in mixed]
            lines.append(f"| {method} | {np.mean(acc):.3f} ± {np.std(acc):.3f} | {np.mean(err):.3f} ± {np.std(err):.3f} |")
    return "\n".join(lines)


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="wine, 20 %%, seed 0, 5 epochs, no selection")
    parser.add_argument("--report", action="store_true", help="print the table from the cache")
    parser.add_argument("--tables", nargs="*", default=list(TABLES))
    parser.add_argument("--results", type=Path, default=OUT / "imputation.json")
    args = parser.parse_args(argv)
    if args.quick:
        global IMPUTE_SAMPLES
        IMPUTE_SAMPLES = 50
        print(json.dumps(measure("wine", 0.2, 0, ["train.epochs=5", "model.latent_dim=4"]), indent=1))
        return
    results: Dict[str, Any] = json.loads(args.results.read_text()) if args.results.is_file() else {}

    def save() -> None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1, sort_keys=True))

    if not args.report:
        for name in args.tables:
            for rate in RATES:
                key = f"choice/{name}/{rate}"
                if key not in results:
                    scores = select(name, rate)
                    results[f"validation/{name}/{rate}"] = scores
                    results[key] = min(scores, key=scores.get)
                    save()
                for seed in SEEDS:
                    row = results.get(f"{name}/{rate}/{seed}")
                    if row is None or row.get("setting") != results[key]:
                        row = measure(name, rate, seed, CANDIDATES[results[key]])
                        results[f"{name}/{rate}/{seed}"] = {**row, "setting": results[key]}
                        print(f"{name} {rate:.0%} seed {seed}: {results[f'{name}/{rate}/{seed}']}", flush=True)
                        save()
        for seed in SEEDS:
            if f"anes96/0.3/{seed}" not in results:
                results[f"anes96/0.3/{seed}"] = measure_mixed(0.3, seed, CANDIDATES["d5_h64"][:2] + ["train.epochs=100"])
                print(f"anes96 30% seed {seed}: {results[f'anes96/0.3/{seed}']}", flush=True)
                save()
    print(report(results))


if __name__ == "__main__":
    main()
