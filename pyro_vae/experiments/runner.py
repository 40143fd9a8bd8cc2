"""Run a grid's cells in worker processes, resumably: ``DIR/<cell>/`` is each cell's run folder.

Before anything runs, each cell's folder is classified: finished (``result.json`` says done: skipped),
failed (retried from scratch), interrupted (``model.pt`` without a result: resumed from it), new. A folder
holding another config's run, or files that are no run, stops the sweep before it starts (nothing is
overwritten).
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import sys
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from tqdm import tqdm

from ..errors import ConfigError, OutputError, shown
from ..threads import available_cpus, child_env, split_threads
from ..train.signals import handling
from .grid import Cell
from .worker import RESULT

PathLike = Union[str, Path]
LOGS = "logs"  # DIR/logs/<cell>.log: each run's stdout and stderr
IGNORED = ("train.progress", "train.epochs")  # may differ between a run folder and its cell (epochs: resumed)


def _worker_env(n_workers: int) -> Dict[str, str]:
    """The environment of each worker process under the library's thread policy: the user's own
    ``OMP_NUM_THREADS`` when set, else the CPUs this process may use (affinity mask, cgroup quota) shared out,
    ⌊cpus / workers⌋ threads each (1 when workers ≥ cores), so parallel runs do not oversubscribe the cores."""
    chosen = os.environ.get("OMP_NUM_THREADS", "").strip()
    return child_env(int(chosen) if chosen.isdigit() and int(chosen) >= 1 else split_threads(n_workers))


@dataclass
class Job:
    """A cell and what to do with it: ``skip`` (finished), ``new``, ``retry``, ``resume`` or ``evaluate``."""

    cell: Cell
    folder: Path
    mode: str
    result: Dict[str, Any] = field(default_factory=dict)


def _differences(a: Any, b: Any, prefix: str = "") -> Iterator[Tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            yield from _differences(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip("."), a, b


def _check_same_config(folder: Path, cell: Cell) -> None:
    """A ConfigError when run folder ``folder`` was trained from another config than ``cell``'s."""
    from ..config.run import load_config
    from ..config.schema import to_dict
    from ..run import _resolve_paths

    stored = to_dict(load_config(folder / "config.yaml"))
    wanted = to_dict(_resolve_paths(copy.deepcopy(cell.config)))
    for key, there, here in _differences(stored, wanted):
        if key not in IGNORED:
            raise ConfigError(f"{shown(folder)} holds a run of another config ({key}: {there!r} there, {here!r} in "
                              "this sweep); give another --out, or the same overrides as before")


def _read_result(folder: Path) -> Dict[str, Any]:
    try:
        return json.loads((folder / RESULT).read_text())
    except (OSError, ValueError):
        return {}


def _result_stamp(folder: Path) -> Optional[int]:
    """The result file's modification time in ns (None when there is none): tells a result this launch wrote
    from one an earlier run left."""
    try:
        return (folder / RESULT).stat().st_mtime_ns
    except OSError:
        return None


def plan(out: Path, grid: Sequence[Cell], evaluate: int = 0) -> List[Job]:
    """What each cell needs; a ConfigError/OutputError (one line) for a folder that is not this sweep's."""
    from ..train.runfolder import check_out

    jobs = []
    for cell in grid:
        folder = out / cell.name
        epochs = cell.config.train.epochs
        if not folder.exists():
            jobs.append(Job(cell, folder, "new"))
            continue
        if (folder / "config.yaml").is_file():
            _check_same_config(folder, cell)
        result = _read_result(folder)
        stopped = _stopped_early(folder, cell)  # train.early_stopping: its held-out bound levelled off
        if result.get("status") == "done" and not (folder / "model.pt").is_file():  # a finished run, weights not kept
            if ((result.get("epochs") == epochs or stopped)
                    and evaluate in (0, result.get("evaluate", {}).get("num_samples"))):
                jobs.append(Job(cell, folder, "skip", result))
                continue
            raise OutputError(f"{shown(folder)}: a finished run without its weights (model.pt), so it cannot be "
                              f"trained further or evaluated again; restore model.pt or give another --out")
        started = (folder / "config.yaml").is_file() and not (folder / "model.pt").is_file()  # killed in epoch 1
        if result.get("status") == "failed" or started:
            jobs.append(Job(cell, folder, "retry", result))
        elif (folder / "model.pt").is_file():
            done = result.get("status") == "done"
            trained = _epochs_done(folder)
            if trained < epochs and not stopped:
                jobs.append(Job(cell, folder, "resume", result))
            elif trained > epochs:
                raise ConfigError(f"{shown(folder)}: trained {trained} epochs, this sweep asks for {epochs} (a run is "
                                  f"never shortened); give train.epochs >= {trained} or another --out")
            elif not done or (evaluate and result.get("evaluate", {}).get("num_samples") != evaluate):
                jobs.append(Job(cell, folder, "evaluate", result))
            else:
                jobs.append(Job(cell, folder, "skip", result))
        else:
            try:
                check_out(folder)
            except Exception as e:
                raise OutputError(f"{e}") from None
            jobs.append(Job(cell, folder, "new"))
    return jobs


def _rows(folder: Path) -> List[Dict[str, Any]]:
    """The run's ``metrics.jsonl`` rows (none when missing or unreadable)."""
    try:
        return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _epochs_done(folder: Path) -> int:
    try:
        return sum(1 for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip())
    except OSError:
        return 0


def _stopped_early(folder: Path, cell: Cell) -> bool:
    """The run in ``folder`` stopped under the cell's ``train.early_stopping``: nothing left to train."""
    from ..train.stopping import stopped_early

    stopping = cell.config.train.early_stopping
    return stopping.patience is not None and stopped_early(_rows(folder), stopping)


def status_line(job: Job) -> str:
    """``lr=0.01,seed=1: done, 10 epochs, test ELBO -25.31 (12.3 s)`` or ``...: failed: <error>``."""
    r = job.result
    if r.get("status") == "done":
        extra = ""
        report = r.get("evaluate") or {}
        if "test_log_likelihood" in report:
            extra = f", log p(x) {report['test_log_likelihood']:.2f} (K={report['num_samples']})"
        return (f"{job.cell.name}: done, {r['epochs']} epochs, test ELBO {r['test_elbo']:.2f}{extra} "
                f"({r.get('seconds', 0):.1f} s)")
    return f"{job.cell.name}: {r.get('status', 'interrupted')}" + (f": {r['error']}" if r.get("error") else "")


#: the folder holding the pyro_vae package this process imported (a checkout, or site-packages)
LIBRARY_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def library_first() -> Iterator[None]:
    """While a worker starts, :data:`LIBRARY_ROOT` first on ``PYTHONPATH``: the forkserver starts from this
    process's environment but not its ``sys.path``, so without it a checkout run beside an installed copy
    would train with the installed copy's code. The environment is restored as it was."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(LIBRARY_ROOT), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def _context() -> Any:
    """Worker processes forked from a server that imported the library once (``forkserver``; a fresh
    interpreter per run where the OS has no fork)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["pyro_vae.experiments.worker", "pyro_vae.run"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover  (Windows)


class _Stop:
    """SIGINT/SIGTERM while the sweep runs: start no new run, pass the signal on to the running ones (each
    finishes its step and saves its checkpoint)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.children: Dict[int, Any] = {}
        self.lock = threading.Lock()

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum
        with self.lock:
            for child in self.children.values():
                if child.is_alive():
                    child.terminate()


def _launch(job: Job, config: Optional[PathLike], out: Path, evaluate: int, threads: int, stop: _Stop,
            ctx: Any, imports: Sequence[str] = ()) -> Job:
    from .worker import child_main

    if stop.signum is not None:
        job.result = {"status": "interrupted"}
        return job
    spec = {"config": None if config is None else str(config), "out": str(job.folder), "mode": job.mode,
            "overrides": list(job.cell.overrides), "epochs": job.cell.config.train.epochs, "evaluate": evaluate,
            "imports": list(imports)}
    log = out / LOGS / f"{job.cell.name}.log"
    child = ctx.Process(target=child_main, args=(spec, str(log), threads), name=f"sweep {job.cell.name}")
    stamp = _result_stamp(job.folder)
    with stop.lock:
        with library_first():  # the first start launches the forkserver, which imports the library
            child.start()
        stop.children[child.pid] = child
    child.join()
    with stop.lock:
        del stop.children[child.pid]
    code = child.exitcode
    stopped = code == 130 or code < 0
    # 255: the forkserver lost the exit status (its status pipe closed; seen when a run ends within moments of
    # another): a result the run wrote in this launch still stands
    wrote = code in (0, 1) or (code == 255 and _result_stamp(job.folder) not in (None, stamp))
    job.result = (_read_result(job.folder) if wrote else {}) or (
        {"status": "interrupted"} if stopped else
        {"status": "failed", "error": f"the worker exited with code {code}; see {shown(log)}"})
    return job


def run_jobs(jobs: Sequence[Job], config: Optional[PathLike], out: Path, workers: int, evaluate: int = 0,
             progress: bool = True, imports: Sequence[str] = ()) -> Optional[int]:
    """Run every job that is not ``skip`` on ``workers`` processes, one status line as each finishes; the
    signal number when a signal stopped the sweep, else None. ``imports``: the user's own modules that the
    runs' import paths may import (``--import``)."""
    todo = [job for job in jobs if job.mode != "skip"]
    skipped = len(jobs) - len(todo)
    if skipped:
        print(f"pyro-vae: sweep: {skipped} of {len(jobs)} runs already finished in {out}", file=sys.stderr)
    if not todo:
        return None
    env, stop, ctx = _worker_env(workers), _Stop(), _context()
    threads = int(env["OMP_NUM_THREADS"])
    (out / LOGS).mkdir(exist_ok=True)
    saved = dict(os.environ)
    os.environ.update(env)  # the worker server, started now, reads the thread policy before importing torch
    try:
        with handling(stop), tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress,
                                  dynamic_ncols=True) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_launch, job, config, out, evaluate, threads, stop, ctx, imports) for job in todo]
            for future in as_completed(futures):
                bar.update(1)
                bar.write(status_line(future.result()), file=sys.stderr)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return stop.signum
