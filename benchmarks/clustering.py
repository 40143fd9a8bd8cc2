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
``--validation`` on a validation slice (``data.validation=0.1``: 10 % of the training split; the model then
trains on the other 90 %): settings are chosen there, never on the held-out points. Beside it the unsupervised
rows also report the papers' protocol (VaDE, DEC): the clusters of the very points the model (or k-means) was
fitted on, scored against their labels (``fitted_*`` metrics).

Each trained row is a ``pyro-vae sweep`` of its config over the seeds, every run evaluated with K = 100
importance samples: ``OUT/<dataset>/<row>/`` holds the run folders and ``summary.csv``, and a rerun resumes
(finished runs are kept). The report step reads the summaries, adds the k-means rows (on the training
pixels, and on the latent means of the VAE sweep's runs) and writes ``clustering_table.md`` and
``clustering.png``. What the report computes from a run's checkpoint (the fitted-set metrics, the k-means
and GMM on a VAE's latent means) it keeps in the sweep's ``derived.json``, so the report reruns from the
committed summaries where the checkpoints (not committed) are absent.

    python benchmarks/clustering.py --workers 2                             # everything (about 45 min, 2 cores)
    python benchmarks/clustering.py --datasets digits --rows vade --validation --tag try --set model.pretrain.epochs=30
    python benchmarks/clustering.py --report                                # table + figure from the sweeps
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sweep_report import REPO, read_summary

from pyro_vae.experiments.summary import mean_sd

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
SWEEPS = {"vae_kmeans": "vae", "vae_gmm": "vae"}  # rows read from another row's sweep (one VAE serves both)


def config_path(dataset: str, row: str) -> Path:
    return REPO / "configs" / ROWS[row][0].format(ds=dataset)


def folder(out: Path, dataset: str, row: str, tag: str = "") -> Path:
    return out / dataset / (SWEEPS.get(row, row) + (f"@{tag}" if tag else ""))


def data_overrides(dataset: str, validation: bool) -> List[str]:
    return ([f"data.root={MNIST_ROOT}"] if dataset == "mnist" else []) + (
        [f"data.validation={VALIDATION_FRACTION}"] if validation else [])


def sweep_row(dataset: str, row: str, seeds: List[int], validation: bool, extra: List[str], out: Path, tag: str,
              workers: Optional[int]) -> None:
    """Train ``row`` on ``dataset`` for each seed (a sweep; finished runs are kept)."""
    from pyro_vae.experiments.sweep import sweep

    grid = [f"seed={','.join(map(str, seeds))}", *ROWS[row][1], *data_overrides(dataset, validation), *extra]
    sweep(config_path(dataset, row), grid, folder(out, dataset, row, tag), workers, LOG_PX_SAMPLES, keep=("seed",))


def kmeans_metrics(train_points, test_points, labels, seed: int, k: int = 10, train_labels=None) -> Dict[str, Any]:
    """k-means fitted to ``train_points``, scored on ``test_points``; with ``train_labels`` also on the points it
    was fitted on (``fitted_*``)."""
    from sklearn.cluster import KMeans

    from pyro_vae.evaluation.clustering import assignment_metrics

    km = KMeans(k, n_init=10, random_state=seed).fit(train_points)
    fitted = {} if train_labels is None else fitted_metrics(assignment_metrics(km.labels_, train_labels))
    return {**assignment_metrics(km.predict(test_points), labels), **fitted}


def fitted_metrics(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """Metrics of the points a model was fitted on, kept apart from the held-out ones."""
    return {f"fitted_{k}": v for k, v in metrics.items()}


DERIVED = "derived.json"


def derived(sweep_dir: Path, record: Dict[str, str], compute) -> Dict[str, Any]:
    """``compute(run_dir)`` for the run of summary row ``record``, kept in ``sweep_dir/derived.json``: keyed by the
    run's name and its final training ELBO, so a rerun run is computed afresh from its new checkpoint."""
    from pyro_vae.train.recorders import CHECKPOINT

    path, run = sweep_dir / DERIVED, record["run"]
    cache = json.loads(path.read_text()) if path.is_file() else {}
    key = f"{compute.__name__} {record['train_elbo']}"
    if cache.get(run, {}).get(compute.__name__, {}).get("key") != key:
        if not (sweep_dir / run / CHECKPOINT).is_file():
            raise FileNotFoundError(f"{sweep_dir / run / CHECKPOINT}: the report needs this run's checkpoint for "
                                    f"{compute.__name__} (not in {path}); rerun the sweep to recreate it")
        cache.setdefault(run, {})[compute.__name__] = {"key": key, "metrics": compute(sweep_dir / run)}
        path.write_text(json.dumps(cache, indent=1, sort_keys=True, default=float) + "\n")
    return cache[run][compute.__name__]["metrics"]


def fitted_set(run_dir: Path) -> Dict[str, Any]:
    """The papers' protocol for a trained mixture model: its clusters of the training points, against their labels."""
    from pyro_vae.evaluation.clustering import clustering_metrics
    from pyro_vae.run import load_run

    run = load_run(run_dir)
    return fitted_metrics(clustering_metrics(run.model, run.data(), "train"))


def raw_kmeans(dataset: str, seed: int, validation: bool) -> Dict[str, Any]:
    """k-means on the grey-level training pixels, applied to the held-out ones."""
    from pyro_vae.config.run import load_config
    from pyro_vae.data import load_data

    name = {"digits": "digits_vae.yaml", "mnist": "mnist_vae.yaml"}[dataset]
    config = load_config(REPO / "configs" / name, [*data_overrides(dataset, validation), "data.binarize=none"])
    data = load_data(config.data, seed)
    flat = lambda x: x.flatten(1).numpy()  # noqa: E731
    return {**kmeans_metrics(flat(data.train_x), flat(data.test_x), data.test_y.numpy(), seed,
                             train_labels=data.train_y.numpy()),
            "num_test": int(data.test_x.shape[0]), "num_train": int(data.train_x.shape[0])}


def latent_clusterings(run_dir: Path) -> Dict[str, Dict[str, Any]]:
    """k-means and a diagonal GMM fitted to a VAE run's training latent means, applied to the held-out ones (and,
    ``fitted_*``, to the training latent means they were fitted on)."""
    import pyro.distributions as dist
    import torch

    from pyro_vae.evaluation.clustering import assignment_metrics
    from pyro_vae.priors.gmm import fit_gaussian_mixture
    from pyro_vae.run import load_run

    run = load_run(run_dir)
    data, seed = run.data(), run.config.seed
    with torch.no_grad():
        z_train, z_test = run.model.encode(data.train_x)[0], run.model.encode(data.test_x)[0]
    labels, train_labels = data.test_y.numpy(), data.train_y.numpy()
    weights, locs, scales = fit_gaussian_mixture(z_train, 10, seed, restarts=3)
    assign = lambda z: (weights.log() + dist.Normal(locs, scales).to_event(1).log_prob(z.unsqueeze(-2))  # noqa: E731
                        ).argmax(-1).numpy()
    return {"vae_kmeans": kmeans_metrics(z_train.numpy(), z_test.numpy(), labels, seed, train_labels=train_labels),
            "vae_gmm": {**assignment_metrics(assign(z_test), labels),
                        **fitted_metrics(assignment_metrics(assign(z_train), train_labels))}}


def records(out: Path, dataset: str, row: str, seeds: List[int], validation: bool, tag: str) -> List[Dict[str, Any]]:
    """The per-seed metrics of ``row``: from its sweep's ``summary.csv`` (the k-means rows computed here)."""
    if row == "kmeans_raw":
        return [raw_kmeans(dataset, seed, validation) for seed in seeds]
    path = folder(out, dataset, row, tag)
    if not (path / "summary.csv").is_file():
        return []
    done = [r for r in read_summary(path) if r["status"] == "done"]
    if row in SWEEPS:
        return [{**derived(path, r, latent_clusterings)[row], "seconds": float(r["seconds"])} for r in done]
    unsupervised = not row.startswith("m2")  # M2's training points include its labelled ones
    return [{**{k: float(v) for k, v in r.items() if v not in ("", None) and _number(v)},
             "log_px": float(r["test_log_likelihood"]), **(derived(path, r, fitted_set) if unsupervised else {})}
            for r in done]


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def fmt(results: List[Dict[str, Any]], metric: str, scale: float = 1.0) -> str:
    return mean_sd([scale * r[metric] for r in results if r.get(metric) is not None]) if results else "—"


def table(results: Dict[Tuple[str, str], List[Dict[str, Any]]], datasets) -> str:
    lines = []
    for ds in datasets:
        num_test = next((int(r["num_test"]) for (d, _), rs in results.items() if d == ds for r in rs
                         if "num_test" in r), "—")
        lines += [f"**{ds}** (held-out points per seed: {num_test})", "",
                  "| model | seeds | held-out cluster acc. (%) | NMI | ARI | components used (≥ 1 %) "
                  "| fitted set: cluster acc. (%) | fitted set: NMI | classifier acc. (%) | log p(x) (nats) | seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in ROWS:
            rs = results.get((ds, row), [])
            if not rs:
                continue
            cells = [LABELS[row], str(len(rs)), fmt(rs, "cluster_accuracy", 100), fmt(rs, "cluster_nmi"),
                     fmt(rs, "cluster_ari"), fmt(rs, "components_used"), fmt(rs, "fitted_cluster_accuracy", 100),
                     fmt(rs, "fitted_cluster_nmi"), fmt(rs, "classifier_accuracy", 100),
                     fmt(rs, "log_px"), fmt(rs, "seconds")]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def figure(results: Dict[Tuple[str, str], List[Dict[str, Any]]], path: Path, datasets) -> None:
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        rows = [r for r in ROWS if results.get((ds, r))]
        accs = [[100 * m["cluster_accuracy"] for m in results[(ds, r)]] for r in rows]
        ax.barh(range(len(rows)), [statistics.fmean(a) for a in accs],
                xerr=[statistics.stdev(a) if len(a) > 1 else 0.0 for a in accs], color="tab:blue", alpha=0.8,
                capsize=3)
        for i, a in enumerate(accs):
            ax.scatter(a, [i] * len(a), color="black", s=8, zorder=3)
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
                        help="score on 10%% of the training split (train on the rest): to choose settings")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for the trained rows (a tuning run; kept under its own --tag)")
    parser.add_argument("--tag", default="", help="sweep folder suffix for a variant (e.g. a --set being tried)")
    parser.add_argument("--workers", type=int, default=None, help="runs at once (default: the CPUs available)")
    parser.add_argument("--report", action="store_true", help="only write the table and figure from the sweeps")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    out = Path(args.out) / ("validation" if args.validation else "")
    if not args.report:
        swept = set()
        for ds in args.datasets:
            for row in args.rows:
                if row != "kmeans_raw" and folder(out, ds, row, args.tag) not in swept:
                    swept.add(folder(out, ds, row, args.tag))
                    sweep_row(ds, row, args.seeds, args.validation, args.set, out, args.tag, args.workers)
    results = {(ds, row): records(out, ds, row, args.seeds, args.validation, args.tag)
               for ds in args.datasets for row in args.rows}
    text = table(results, args.datasets)
    print(text)
    if set(args.datasets) != set(DATASETS) or set(args.rows) != set(ROWS) or args.tag:
        print("(a part of the benchmark: clustering_table.md and clustering.png are written only for every row "
              "and dataset, so the full table is not replaced by a part of it)")
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "clustering_table.md").write_text(text)
    if any(results.values()):
        figure(results, out / "clustering.png", args.datasets)


if __name__ == "__main__":
    main()
