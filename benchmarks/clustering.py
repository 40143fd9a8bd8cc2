"""Clustering benchmark: mixture-prior models against k-means, on the 8x8 digits and the MNIST t10k split.

Rows (each for 3 seeds; a seed sets the data split, the initialisation and the training order):

* ``kmeans_raw``   k-means (K = 10, 10 restarts) fitted to the training pixels (grey levels), applied to the held-out ones;
* ``vae_kmeans``   k-means on a plain VAE's latent means (``configs/{ds}_vae.yaml``), fitted on the training set;
* ``vae_gmm``      a diagonal GaussianMixture on the same latent means (one VAE serves both rows);
* ``gmm_prior``    today's GMM-prior VAE (``configs/{ds}_gmm.yaml``), clusters p(y | z = μ(x));
* ``vade``         VaDE (``configs/{ds}_vade.yaml``): pretraining, a GMM fitted to the latent means, joint training;
* ``gmvae``        the GMVAE with its balance term (``configs/{ds}_gmvae_balanced.yaml``), clusters q(y|x);
* ``m2_100``, ``m2_600``, ``m2_1000``  M2 with that many labels (``configs/{ds}_m2.yaml``, ``data.labeled``).

Every number is measured on held-out points (the 1,000 of the MNIST t10k split, 180 digits), or with
``--validation`` on a validation slice (the last 10 % of the training split; the model then trains on the
other 90 %): settings are chosen there, never on the held-out points. Finished rows are cached in a JSON
(``clustering.json``, or ``clustering_validation.json``) so a rerun resumes; ``--jobs 2`` runs two at a time.

    python benchmarks/clustering.py --jobs 2                                 # everything (about 45 min, 2 cores)
    python benchmarks/clustering.py --datasets digits --rows vade --validation --set model.pretrain.epochs=30
    python benchmarks/clustering.py --report                                  # table + figure from the cache
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import sys

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's pyro_vae, not an installed copy
OUT = REPO / "benchmarks" / "results" / "clustering"
MNIST_ROOT = Path(os.environ.get("PYRO_VAE_MNIST", REPO.parent / "shared" / "data" / "MNIST" / "raw"))
if not (MNIST_ROOT / "t10k-images-idx3-ubyte.gz").is_file():
    MNIST_ROOT = Path("/work/shared/data/MNIST/raw")
DATASETS = ("digits", "mnist")
SEEDS = (0, 1, 2)
#: row -> (config file pattern, extra overrides); None: not a trained model of its own
ROWS: Dict[str, Tuple[Optional[str], List[str]]] = {
    "kmeans_raw": (None, []),
    "vae_kmeans": ("{ds}_vae.yaml", []),
    "vae_gmm": ("{ds}_vae.yaml", []),
    "gmm_prior": ("{ds}_gmm.yaml", []),
    "vade": ("{ds}_vade.yaml", []),
    "gmvae": ("{ds}_gmvae_balanced.yaml", []),
    "m2_100": ("{ds}_m2.yaml", ["data.labeled=100"]),
    "m2_600": ("{ds}_m2.yaml", ["data.labeled=600"]),
    "m2_1000": ("{ds}_m2.yaml", ["data.labeled=1000"]),
}
LABELS = {"kmeans_raw": "k-means, raw pixels", "vae_kmeans": "k-means on VAE latent means",
          "vae_gmm": "GMM on VAE latent means", "gmm_prior": "GMM-prior VAE (as before)", "vade": "VaDE",
          "gmvae": "GMVAE + balance term", "m2_100": "M2, 100 labels", "m2_600": "M2, 600 labels",
          "m2_1000": "M2, 1000 labels"}
VALIDATION_FRACTION = 0.1
LOG_PX_SAMPLES = 100


def load_config_for(dataset: str, row: str, seed: int, extra: List[str]):
    from pyro_vae.config.run import load_config

    pattern, overrides = ROWS[row]
    overrides = [f"seed={seed}", "train.progress=false", *overrides, *extra]
    if dataset == "mnist":
        overrides.append(f"data.root={MNIST_ROOT}")
    return load_config(REPO / "configs" / pattern.format(ds=dataset), overrides)


def base_data_config(dataset: str):
    from pyro_vae.config.run import load_config

    name = {"digits": "digits_vae.yaml", "mnist": "mnist_vae.yaml"}[dataset]
    extra = [f"data.root={MNIST_ROOT}"] if dataset == "mnist" else []
    return load_config(REPO / "configs" / name, [*extra, "data.binarize=none"]).data  # grey-level pixels


def load_split(data_config, seed: int, validation: bool):
    """The dataset; with ``validation`` the last 10 % of its training split becomes the (binarized) test split."""
    import torch

    from pyro_vae.data import ImageData, load_data

    data = load_data(data_config, seed)
    if not validation:
        return data
    n = data.train_x.shape[0]
    n_val = int(round(VALIDATION_FRACTION * n))
    x_val, y_val = data.train_x[n - n_val:], data.train_y[n - n_val:]
    if data.binarize != "none":
        x_val = torch.bernoulli(x_val, generator=torch.Generator().manual_seed(seed + 7919))
    return ImageData(data.name, data.train_x[:n - n_val], data.train_y[:n - n_val], x_val, y_val,
                     data.num_classes, data.binarize)


def kmeans_metrics(train_points, test_points, labels, seed: int, k: int = 10) -> Dict[str, Any]:
    from sklearn.cluster import KMeans

    from pyro_vae.evaluation.clustering import assignment_metrics

    km = KMeans(k, n_init=10, random_state=seed).fit(train_points)
    return assignment_metrics(km.predict(test_points), labels)


def train_model(config, data):
    """Build the model of ``config`` and train it on ``data`` with the library's trainer (no run folder)."""
    import pyro

    from pyro_vae.models import build_model
    from pyro_vae.train import Trainer

    pyro.set_rng_seed(config.seed)
    pyro.clear_param_store()
    model = build_model(config.model, data.shape, data.num_classes)
    trainer = Trainer(model, data, config.train, seed=config.seed)
    trainer.fit()
    model.eval()
    return model, trainer


def model_metrics(model, data, seed: int) -> Dict[str, Any]:
    """Clustering metrics, the classifier's accuracy (M2) and the importance-sampled log p(x) on data's test split."""
    import pyro
    import torch

    from pyro_vae.evaluation.classification import classification_metrics
    from pyro_vae.evaluation.clustering import clustering_metrics
    from pyro_vae.evaluation.loglik import test_log_likelihood

    out: Dict[str, Any] = dict(clustering_metrics(model, data))
    out.update(classification_metrics(model, data))  # a classifier over the labels (M2): its accuracy
    pyro.set_rng_seed(seed)
    start = time.perf_counter()
    out["log_px"] = test_log_likelihood(model, data, LOG_PX_SAMPLES, batch_size=100).mean
    out["log_px_samples"], out["eval_seconds"] = LOG_PX_SAMPLES, time.perf_counter() - start
    return out


def run_task(dataset: str, row: str, seed: int, validation: bool, extra: List[str]) -> Dict[str, Dict[str, Any]]:
    """One (dataset, row, seed): its metrics keyed by row (the VAE task answers both of its rows)."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    if row == "kmeans_raw":
        data = load_split(base_data_config(dataset), seed, validation)
        flat = lambda x: x.flatten(1).numpy()  # noqa: E731
        result = {row: kmeans_metrics(flat(data.train_x), flat(data.test_x), data.test_y.numpy(), seed)}
    elif row in ("vae_kmeans", "vae_gmm"):
        from pyro_vae.evaluation.clustering import assignment_metrics
        from pyro_vae.priors.gmm import fit_gaussian_mixture

        config = load_config_for(dataset, row, seed, extra)
        data = load_split(config.data, seed, validation)
        model, _ = train_model(config, data)
        with torch.no_grad():
            z_train, z_test = model.encode(data.train_x)[0], model.encode(data.test_x)[0]
        labels = data.test_y.numpy()
        weights, locs, scales = fit_gaussian_mixture(z_train, 10, seed, restarts=3)
        import pyro.distributions as dist

        log_joint = weights.log() + dist.Normal(locs, scales).to_event(1).log_prob(z_test.unsqueeze(-2))
        result = {"vae_kmeans": kmeans_metrics(z_train.numpy(), z_test.numpy(), labels, seed),
                  "vae_gmm": assignment_metrics(log_joint.argmax(-1).numpy(), labels)}
    else:
        config = load_config_for(dataset, row, seed, extra)
        data = load_split(config.data, seed, validation)
        model, trainer = train_model(config, data)
        result = {row: {**model_metrics(model, data, seed), "epochs": trainer.epoch,
                        "pretrain_epochs": trainer.pretrain_epoch}}
    seconds = time.perf_counter() - start
    for metrics in result.values():
        metrics.update(seconds=seconds, num_test=int(data.test_x.shape[0]), num_train=int(data.train_x.shape[0]))
        if extra:
            metrics["overrides"] = list(extra)
    return result


# ---- cache, table, figure -------------------------------------------------------------------------------
def key(dataset: str, row: str, seed: int) -> str:
    return f"{dataset}/{row}/{seed}"


def load_cache(path: Path) -> Dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_cache(new: Dict[str, Any], path: Path) -> Dict[str, Any]:
    """Merge ``new`` rows into the cache file (other benchmark processes may have added rows since) atomically."""
    cache = {**load_cache(path), **new}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(path)
    return cache


def summarize(cache: Dict[str, Any], dataset: str, row: str, metric: str) -> Optional[Tuple[float, float, int]]:
    values = [v[metric] for k, v in cache.items() if k.startswith(f"{dataset}/{row}/") and metric in v]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)


def fmt(summary: Optional[Tuple[float, float, int]], scale: float = 1.0, digits: int = 1) -> str:
    if summary is None:
        return "—"
    mean, sd, _ = summary
    return f"{scale * mean:.{digits}f} ± {scale * sd:.{digits}f}"


def table(cache: Dict[str, Any], datasets=DATASETS, rows=tuple(ROWS)) -> str:
    lines = []
    for ds in datasets:
        lines += [f"**{ds}** (held-out points per seed: "
                  f"{next((v['num_test'] for k, v in cache.items() if k.startswith(ds + '/')), '—')})", "",
                  "| model | seeds | cluster acc. (%) | NMI | ARI | components used (≥ 1 %) | classifier acc. (%) "
                  "| log p(x) (nats) | seconds |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            acc = summarize(cache, ds, row, "cluster_accuracy")
            if acc is None:
                continue
            cells = [LABELS[row], str(acc[2]), fmt(acc, 100), fmt(summarize(cache, ds, row, "cluster_nmi"), 1, 3),
                     fmt(summarize(cache, ds, row, "cluster_ari"), 1, 3),
                     fmt(summarize(cache, ds, row, "components_used"), 1, 1),
                     fmt(summarize(cache, ds, row, "classifier_accuracy"), 100),
                     fmt(summarize(cache, ds, row, "log_px"), 1, 2), fmt(summarize(cache, ds, row, "seconds"), 1, 0)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def figure(cache: Dict[str, Any], path: Path, datasets=DATASETS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        rows = [r for r in ROWS if summarize(cache, ds, r, "cluster_accuracy") is not None]
        stats = [summarize(cache, ds, r, "cluster_accuracy") for r in rows]
        means = [100 * s[0] for s in stats]
        ax.barh(range(len(rows)), means, xerr=[100 * s[1] for s in stats], color="tab:blue", alpha=0.8, capsize=3)
        for i, r in enumerate(rows):
            seeds = [100 * v["cluster_accuracy"] for k, v in cache.items() if k.startswith(f"{ds}/{r}/")]
            ax.scatter(seeds, [i] * len(seeds), color="black", s=8, zorder=3)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([LABELS[r] for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("held-out cluster accuracy, % (mean ± sd; dots: seeds)")
        ax.set_title(ds)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--validation", action="store_true",
                        help="score on the last 10%% of the training split (train on the rest): to choose settings")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for the trained rows (a tuning run; cached under its own tag)")
    parser.add_argument("--tag", default="", help="cache key suffix for a variant (e.g. a --set being tried)")
    parser.add_argument("--jobs", type=int, default=1, help="tasks run at the same time (processes)")
    parser.add_argument("--report", action="store_true", help="only write the table and figure from the cache")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / ("clustering_validation.json" if args.validation else "clustering.json")
    cache = load_cache(cache_path)
    tag = f"@{args.tag}" if args.tag else ""
    if not args.report:
        tasks, seen = [], set()
        for ds in args.datasets:
            for row in args.rows:
                for seed in args.seeds:
                    task_row = "vae_kmeans" if row == "vae_gmm" else row  # one VAE answers both rows
                    if key(ds, row + tag, seed) in cache or (ds, task_row, seed) in seen:
                        continue
                    seen.add((ds, task_row, seed))
                    tasks.append((ds, task_row, seed))
        print(f"{len(tasks)} tasks -> {cache_path}", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_task, ds, row, seed, args.validation, args.set): (ds, row, seed)
                       for ds, row, seed in tasks}
            for future in as_completed(futures):
                ds, row, seed = futures[future]
                try:
                    result = future.result()
                except Exception as e:  # one failing row is reported, the others still finish
                    print(f"FAILED {ds}/{row}/{seed}: {type(e).__name__}: {e}", flush=True)
                    continue
                rows = {key(ds, name + tag, seed): metrics for name, metrics in result.items()}
                for name, metrics in result.items():
                    print(f"{ds}/{name}{tag}/{seed}: acc {metrics.get('cluster_accuracy', math.nan):.3f} "
                          f"used {metrics.get('components_used')} {metrics['seconds']:.0f}s", flush=True)
                cache = save_cache(rows, cache_path)
    if args.validation or args.tag:
        rows = sorted({k.split("/")[1] for k in cache})
        for ds in args.datasets:
            for row in rows:
                acc = summarize(cache, ds, row, "cluster_accuracy")
                if acc is not None:
                    print(f"{ds:6s} {row:40s} acc {fmt(acc, 100)} (n={acc[2]})  used "
                          f"{fmt(summarize(cache, ds, row, 'components_used'))}")
        return
    text = table(cache, args.datasets)
    (out / "clustering_table.md").write_text(text)
    figure(cache, out / "clustering.png", args.datasets)
    print(text)


if __name__ == "__main__":
    main()
