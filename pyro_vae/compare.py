"""Put two or more run folders side by side: one markdown table and one figure of their held-out ELBO curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .errors import ConfigError  # noqa: E402
from .plots import save_epoch_axes  # noqa: E402
from .run import load_run  # noqa: E402

PathLike = Union[str, Path]


def _describe(component: Any) -> str:
    """A component config's registered ``type`` (a placeholder string as is)."""
    return component if isinstance(component, str) else component.type


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return "—" if value is None else str(value)


def expand_sweeps(paths: Sequence[PathLike]) -> List[Path]:
    """Each path that is a sweep folder (no ``model.pt``, run folders below it) replaced by its run folders."""
    out: List[Path] = []
    for path in map(Path, paths):
        runs = sorted(p for p in path.iterdir() if (p / "model.pt").is_file()) \
            if path.is_dir() and not (path / "model.pt").exists() else []
        out.extend(runs or [path])
    return out


def compare_runs(run_dirs: Sequence[PathLike], figure: Optional[PathLike] = None, names: Optional[Sequence[str]] = None,
                 num_samples: int = 0, imports: Sequence[str] = ()) -> str:
    """A markdown table of the runs (a sweep folder stands for its run folders: model, prior, likelihood, guide,
    objective, epochs, last train/test ELBO, and with
    ``num_samples`` = K > 0 the evaluation report's importance-sampled log p(x) and clustering accuracy),
    and ``figure``: every run's per-epoch test (solid) and train (dashed) ELBO on one set of axes.
    ``imports``: the modules the runs' import paths may import (see :func:`~pyro_vae.run.load_run`)."""
    if names is None:
        run_dirs = expand_sweeps(run_dirs)
    if len(run_dirs) < 2:
        raise ConfigError("compare: give two or more run folders (or a sweep folder)")
    names = list(names) if names is not None else [Path(d).name for d in run_dirs]
    rows: List[Dict[str, Any]] = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, run_dir in zip(names, run_dirs):
        run = load_run(run_dir, imports=imports)
        last = run.history[-1] if run.history else {}
        row: Dict[str, Any] = {
            "run": name, "model": run.config.model.type, "prior": _describe(run.config.model.prior),
            "likelihood": _describe(run.config.model.likelihood),
            "guide": _describe(getattr(run.config.model, "guide", None) or "—"),
            "objective": _describe(run.config.train.objective), "epochs": last.get("epoch"),
            "train ELBO": last.get("train_elbo"), "test ELBO": last.get("test_elbo"),
        }
        if num_samples > 0:
            report = run.evaluate(num_samples)
            row[f"log p(x) (K={num_samples})"] = report.get("test_log_likelihood", report.get("test_iwae"))
            row["cluster acc."] = report.get("cluster_accuracy")
        rows.append(row)
        if run.history:
            epochs = [h["epoch"] for h in run.history]
            line, = ax.plot(epochs, [h["test_elbo"] for h in run.history], label=name)
            ax.plot(epochs, [h["train_elbo"] for h in run.history], ls="--", color=line.get_color(), alpha=0.6)
    save_epoch_axes(fig, ax, figure, "ELBO, nats per datapoint (test solid, train dashed)")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
