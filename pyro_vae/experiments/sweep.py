"""``pyro-vae sweep``: a grid of runs into one folder, in parallel and resumably, with a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..errors import ConfigError, OutputError, shown
from .grid import build, parse_axes
from .runner import available_cpus, plan, run_jobs
from .summary import write_summary

PathLike = Union[str, Path]


def check_trackers(grid: Sequence[Any]) -> None:
    """The trackers the cells turn on are installed, and an MLflow store opens: else a ConfigError."""
    from ..tracking import check_trackers as check

    for cell in grid:
        check(cell.config)
    if any(getattr(cell.config.train, "mlflow", False) for cell in grid):
        from ..tracking.mlflow import client

        try:
            client().search_experiments(max_results=1)
        except Exception as e:
            raise ConfigError(f"train.mlflow: cannot open the MLflow store (MLFLOW_TRACKING_URI): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def sweep(config: Optional[PathLike], overrides: Sequence[str], out: PathLike, workers: Optional[int] = None,
          evaluate: int = 0, progress: bool = True, keep: Sequence[str] = (),
          imports: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """Train the cross product of ``overrides`` (``key=a,b,c`` lists; others apply to every run) from ``config``
    into ``out/<cell>/`` on ``workers`` processes (default: the CPUs available), each run evaluated with K =
    ``evaluate`` importance samples when > 0; writes ``out/summary.{csv,md,png}`` and returns the rows.
    ``keep``: keys that are axes (summary columns, parts of the folder names) even with one value.
    ``imports``: modules the runs' import paths (``type: module:Class``) may import when a run is resumed or
    evaluated (see :func:`~pyro_vae.run.load_run`).
    Finished runs are skipped, interrupted ones resumed, failed ones retried. A signal stops the sweep after
    the running runs have saved their checkpoints (:class:`~pyro_vae.train.signals.Interrupted`)."""
    from ..train.signals import Interrupted

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
    if evaluate < 0:
        raise ConfigError(f"--evaluate: expected an integer >= 0 (K importance samples), got {evaluate}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {shown(out)}: is a file, not a folder")
    grid = build(config, overrides, keep)
    check_trackers(grid)
    jobs = plan(out, grid, evaluate)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--out {shown(out)}: cannot create the folder ({e.strerror or e})") from None
    todo = sum(job.mode != "skip" for job in jobs)
    signum = run_jobs(jobs, config, out, max(1, min(workers or available_cpus(), todo or 1)), evaluate, progress,
                      imports)
    axes, _ = parse_axes(overrides, keep)
    table = write_summary(out, jobs, [*axes, "seed"])
    if signum is not None:
        import signal

        raise Interrupted(f"stopped by {signal.Signals(signum).name}; the runs that had started saved their "
                          f"checkpoints; rerun the same command to continue", signum)
    return table
