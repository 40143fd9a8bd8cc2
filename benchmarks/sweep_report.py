"""The report step shared by the benchmarks built on ``pyro-vae sweep``: read a sweep's ``summary.csv`` and
write one markdown table of mean ± sd over seeds per row."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pyro_vae, not an installed copy

from pyro_vae.experiments.summary import groups, mean_sd  # noqa: E402

Row = Dict[str, str]


def swept_keys(rows: Sequence[Row]) -> List[str]:
    """The swept keys of a summary (its columns between ``run`` and ``seed``), ``seed`` left out."""
    columns = list(rows[0]) if rows else []
    return columns[1:columns.index("seed")] if "seed" in columns else []


def read_summary(folder: Path) -> List[Row]:
    """The rows of ``folder/summary.csv`` (as strings, one per run)."""
    with open(Path(folder) / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def stopped_run(folder: Path, seed: int, patience: int, monitor: str) -> Optional[Tuple[List[Dict], int]]:
    """A finished early-stopping sweep's run ``folder/seed=<seed>``: its per-epoch history and the epoch the
    stopping rule (``patience``, ``monitor``) keeps, or None while the run has not finished."""
    from pyro_vae.config.train import EarlyStoppingConfig
    from pyro_vae.train.stopping import best_epoch

    folder = Path(folder)
    if not (folder / "summary.csv").is_file() or read_summary(folder)[0]["status"] != "done":
        return None
    lines = (folder / f"seed={seed}" / "metrics.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines if line.strip()]
    return history, best_epoch(history, EarlyStoppingConfig(patience=patience, monitor=monitor))


def replace_between(doc: str, start: str, end: str, text: str) -> str:
    """``doc`` with ``text`` between the markers ``start`` and ``end`` (unchanged when either is missing): how a
    script puts its table into its write-up."""
    if start not in doc or end not in doc:
        return doc
    head, rest = doc.split(start, 1)
    text = text if text.endswith("\n") else text + "\n"  # the end marker keeps a line of its own
    return f"{head}{start}\n{text}{end}{rest.split(end, 1)[1]}"


def values(rows: Sequence[Row], column: str, scale: float = 1.0) -> List[float]:
    """The finished runs' numbers in ``column`` (times ``scale``)."""
    return [scale * float(r[column]) for r in rows if r["status"] == "done" and r.get(column) not in (None, "")]


def table(rows: Sequence[Row], keys: Sequence[str], columns: Sequence[Tuple[str, str, float]],
          names: Optional[Callable[[str], str]] = None) -> str:
    """One line per cell, the values of ``keys`` (in the sweep's order): ``runs`` finished of all, then for each
    ``(header, column, scale)`` the mean ± sd over seeds; ``names`` shows a value."""
    header = [*keys, "runs", *(h for h, _, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell, members in groups(rows, list(keys)).items():
        done = sum(r["status"] == "done" for r in members)
        cells = [mean_sd(values(members, column, scale)) for _, column, scale in columns]
        shown = [names(v) if names else v for v in cell]
        lines.append("| " + " | ".join([*shown, f"{done}/{len(members)}", *cells]) + " |")
    return "\n".join(lines) + "\n"
