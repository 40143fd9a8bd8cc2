"""A sweep's results: ``summary.csv`` (one row per run), ``summary.md`` (mean ± sd over seeds per cell) and
``summary.png`` (the held-out ELBO, and log p(x) when evaluated, per cell with ± sd bars)."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .runner import Job

BASE = ("run", "seed", "status", "epochs", "train_elbo", "test_elbo", "seconds")
REPORTED = ("test_log_likelihood", "test_log_likelihood_bits_per_dim", "cluster_accuracy", "classifier_accuracy",
            "active_units", "kl", "mutual_info")  # evaluate-report numbers summarised in summary.md, if present
SKIPPED = ("epoch", "latent_dim", "num_test", "log_num_test", "scored_dims")  # report entries the row has already
LABELS = {"test_elbo": "test ELBO", "train_elbo": "train ELBO", "test_log_likelihood": "log p(x)",
          "test_log_likelihood_bits_per_dim": "bits/dim", "cluster_accuracy": "cluster acc.",
          "classifier_accuracy": "classifier acc.", "active_units": "active units", "kl": "KL",
          "mutual_info": "I(x;z)", "seconds": "seconds"}


def rows(jobs: Sequence[Job]) -> List[Dict[str, Any]]:
    """One dict per run: swept values, seed, status, epochs, final ELBOs, seconds, the evaluate report's
    scalars and the error of a failed run."""
    out = []
    for job in jobs:
        r = job.result or {}
        row: Dict[str, Any] = {"run": job.cell.name, **job.cell.values, "seed": job.cell.config.seed,
                               "status": r.get("status", "interrupted")}
        for key in BASE[3:]:
            row[key] = r.get(key)
        for key, value in (r.get("evaluate") or {}).items():  # the report's test_elbo (K samples) is not the run's
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and key not in row and key not in SKIPPED:
                row[key] = value
        row["error"] = r.get("error", "")
        out.append(row)
    return out


def write_csv(table: Sequence[Dict[str, Any]], path: Path) -> None:
    columns = list(dict.fromkeys(k for row in table for k in row if k != "error")) + ["error"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)


def mean_sd(values: Sequence[float]) -> str:
    """``-25.31 ± 0.42`` (sample sd over seeds); one value alone has no ± part."""
    if not values:
        return "—"
    m = statistics.fmean(values)
    digits = 2 if abs(m) >= 1 else 3
    return f"{m:.{digits}f}" + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def groups(table: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[tuple, List[Dict[str, Any]]]:
    """The runs of each cell: rows grouped by the swept keys other than ``seed``, in grid order."""
    cells: Dict[tuple, List[Dict[str, Any]]] = {}
    for row in table:
        cells.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return cells


def markdown(table: Sequence[Dict[str, Any]], swept: Sequence[str]) -> str:
    """Mean ± sd over the seeds of each cell, finished runs only (``runs``: finished of all)."""
    keys = [k for k in swept if k != "seed"]
    metrics = ["train_elbo", "test_elbo", *(m for m in REPORTED if any(m in row for row in table)), "seconds"]
    header = [*keys, "runs", *(LABELS[m] for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell, members in groups(table, keys).items():
        done = [r for r in members if r["status"] == "done"]
        stats = [mean_sd([float(r[m]) for r in done if r.get(m) is not None and math.isfinite(float(r[m]))])
                 for m in metrics]
        lines.append("| " + " | ".join([*map(str, cell), f"{len(done)}/{len(members)}", *stats]) + " |")
    return "\n".join(lines) + "\n"


def figure(table: Sequence[Dict[str, Any]], swept: Sequence[str], path: Path) -> Optional[Path]:
    """Test ELBO (and log p(x) when evaluated) per cell, mean with ± sd bars over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in swept if k != "seed"]
    metrics = ["test_elbo"] + (["test_log_likelihood"] if any("test_log_likelihood" in r for r in table) else [])
    cells = groups(table, keys)
    names = [",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, cell)) or "all" for cell in cells]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5.0, 0.7 * len(cells) + 2) * len(metrics), 4),
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        means, sds = [], []
        for members in cells.values():
            values = [float(r[metric]) for r in members if r["status"] == "done" and r.get(metric) is not None]
            means.append(statistics.fmean(values) if values else math.nan)
            sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        ax.errorbar(range(len(names)), means, yerr=sds, fmt="o", capsize=4)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{LABELS[metric]}, nats per datapoint")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_summary(out: Path, jobs: Sequence[Job], swept: Sequence[str]) -> List[Dict[str, Any]]:
    """``summary.csv``, ``summary.md`` and ``summary.png`` in sweep folder ``out``; returns the rows."""
    table = rows(jobs)
    write_csv(table, out / "summary.csv")
    (out / "summary.md").write_text(markdown(table, swept))
    if any(r["status"] == "done" for r in table):
        figure(table, swept, out / "summary.png")
    return table
