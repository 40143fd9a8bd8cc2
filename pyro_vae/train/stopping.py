"""``train.early_stopping``: when the held-out bound has levelled off, a pure function of the run's history.

The rule reads only the per-epoch rows (``metrics.jsonl`` / ``run.history``), so the trainer, ``--resume`` and a
sweep's planner reach the same verdict about the same run folder without any state of their own.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..config.train import EarlyStoppingConfig


def monitored(history: Sequence[Mapping[str, Any]], config: EarlyStoppingConfig) -> list:
    """The watched bound per epoch (``test_elbo`` or ``test_iwae``); rows without it (older runs) are left out."""
    key = f"test_{config.monitor}"
    return [float(row[key]) for row in history if row.get(key) is not None]


def levelled_off(values: Sequence[float], patience: Optional[int], min_delta: float = 0.0) -> bool:
    """True when the last ``patience`` values rose at most ``min_delta`` above the best before them:
    max(m_{t−p+1..t}) ≤ max(m_{1..t−p}) + min_delta. Never with ``patience`` None or p or fewer values."""
    if patience is None or len(values) <= patience:
        return False
    return max(values[-patience:]) <= max(values[:-patience]) + min_delta


def stopped_early(history: Sequence[Mapping[str, Any]], config: EarlyStoppingConfig) -> bool:
    """Whether a run with this ``history`` has stopped under ``config`` (nothing left to train)."""
    return levelled_off(monitored(history, config), config.patience, config.min_delta)


def best_epoch(history: Sequence[Mapping[str, Any]], config: EarlyStoppingConfig) -> Optional[int]:
    """The epoch (1-based) with the highest watched bound, None without one: the budget the held-out slice chose."""
    rows = [row for row in history if row.get(f"test_{config.monitor}") is not None]
    values = monitored(rows, config)
    return int(rows[values.index(max(values))]["epoch"]) if rows else None


def describe(history: Sequence[Mapping[str, Any]], config: EarlyStoppingConfig) -> str:
    """``held-out ELBO levelled off: best -98.31 at epoch 41, not beaten by more than 0 in 20 epochs``."""
    values = monitored(history, config)
    best = best_epoch(history, config)
    name = {"elbo": "ELBO", "iwae": "IWAE bound"}[config.monitor]
    return (f"held-out {name} levelled off: best {max(values):.4g} at epoch {best}, not beaten by more than "
            f"{config.min_delta:g} in the last {config.patience} epochs (train.early_stopping)")
