"""``train.threads: auto`` against one thread and all threads, on an idle machine and beside busy programs.

Two workloads, each run as a fresh process per measurement:

* ``digits``: the README's default run, ``pyro-vae train --out DIR`` (100 epochs of the 8x8 digits VAE, pictures
  and checkpoints included), wall seconds of the whole command;
* ``mnist``: the training step of the 784-400-50 MLP VAE at batch 128 (``benchmarks/train_step.py``'s model, the
  default torch engine), median milliseconds per step after warm-up.

Each is measured with 0, 1 and 2 competing busy processes (``python -c 'while True: pass'``, started before
and stopped after each group) and with ``train.threads`` = ``auto``, ``1`` and every available CPU; the three
settings take turns within each repetition, so load from elsewhere falls on them alike. The children run without
``OMP_NUM_THREADS`` (which would override ``auto``). Output: a markdown table (and ``--json``) with the median
of the repetitions and ``auto`` ÷ the best fixed setting per row (target ≤ 1.15).

    python benchmarks/threads.py                 # the docs table (about 20-40 minutes on 2 cores)
    python benchmarks/threads.py --quick         # a smoke run: 2 epochs, 20 steps, 0 and 1 busy, 1 repetition
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from contextlib import contextmanager

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SETTINGS = ("auto", "1", "all")


def child_env() -> Dict[str, str]:
    """This environment without the thread-count variables (so that ``auto`` decides), the checkout importable."""
    from pyro_vae.threads import THREAD_ENV

    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def setting_value(setting: str) -> str:
    """``train.threads`` for a column: ``all`` is every CPU this process may use."""
    from pyro_vae.threads import available_cpus

    return str(available_cpus()) if setting == "all" else setting


@contextmanager
def busy(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU for the duration of the block."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0.0)  # let them get scheduled
        yield
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()


def run_digits(setting: str, quick: bool) -> Tuple[float, Optional[int]]:
    """Wall seconds of ``pyro-vae train --out DIR`` and the thread count its metrics recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pyro_vae", "train", "--out", str(Path(tmp) / "digits"),
                   "train.progress=false", f"train.threads={setting_value(setting)}"]
        if quick:
            command.append("train.epochs=2")
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=tmp)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"pyro-vae train failed: {done.stderr.strip().splitlines()[-1:]}")
        last = (Path(tmp) / "digits" / "metrics.jsonl").read_text().splitlines()[-1]
    return seconds, json.loads(last).get("threads")


def run_mnist(setting: str, quick: bool) -> Tuple[float, Optional[int]]:
    """Median milliseconds per MNIST training step in a fresh process, and its thread count."""
    steps, warmup = (20, 5) if quick else (150, 20)
    command = [sys.executable, str(Path(__file__).resolve()), "--child-step", setting_value(setting),
               "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"MNIST step failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["median_ms"], result["threads"]


def child_step(setting: str, steps: int, warmup: int) -> None:
    """(In the child) build the 784-400-50 VAE and the default engine, choose threads as training does, time steps."""
    sys.path.insert(0, str(HERE))
    from pyro_vae.config.schema import from_dict
    from pyro_vae.threads import training_threads, using_threads
    from pyro_vae.train.config import TrainConfig
    from pyro_vae.train.factory import build_engine
    from train_step import images, vae_model

    config = from_dict(TrainConfig, {"batch_size": 128, "progress": False,
                                     "threads": setting if setting == "auto" else int(setting)})
    model = vae_model()
    engine = build_engine(model, config)
    pool = [images(128, seed=s) for s in range(8)]

    # no dataset object here: the count falls back to the weights' sizes, for an MLP the same multiply-adds
    n, _ = training_threads(model, None, config)
    times: List[float] = []
    with using_threads(n):
        for i in range(warmup + steps):
            start = time.perf_counter()
            engine.step(pool[i % len(pool)])
            if i >= warmup:
                times.append(time.perf_counter() - start)
    print(json.dumps({"threads": n, "median_ms": 1e3 * statistics.median(times)}))


def threads_said(n: Optional[int]) -> str:
    return f"{n} thread{'s' * (n != 1)}"


def machine() -> str:
    """CPU model, CPUs available to this process, torch version."""
    import torch

    from pyro_vae.threads import available_cpus

    model = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model}, {available_cpus()} CPUs available, torch {torch.__version__}, {platform.system()}"


def measure(loads: List[int], reps: int, quick: bool) -> List[Dict]:
    rows = []
    for workload, runner, unit in (("digits", run_digits, "s"), ("mnist", run_mnist, "ms/step")):
        for load in loads:
            samples: Dict[str, List[float]] = {s: [] for s in SETTINGS}
            chosen: Dict[str, Optional[int]] = {}
            with busy(load):
                for _ in range(reps):
                    for setting in SETTINGS:  # in turns
                        value, threads = runner(setting, quick)
                        samples[setting].append(value)
                        chosen[setting] = threads
            medians = {s: statistics.median(v) for s, v in samples.items()}
            best = min(medians["1"], medians["all"])
            rows.append({"workload": workload, "unit": unit, "busy": load, "medians": medians, "threads": chosen,
                         "auto_vs_best": medians["auto"] / best})
            print(f"{workload} busy={load}: " + ", ".join(f"{s} {medians[s]:.3g} {unit} ({threads_said(chosen[s])})"
                                                          for s in SETTINGS), file=sys.stderr, flush=True)
    return rows


def table(rows: List[Dict], description: str) -> str:
    lines = [f"Machine: {description}.", "",
             "| workload | busy processes | `auto` | 1 thread | all CPUs | `auto` ÷ best fixed |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        m, t = r["medians"], r["threads"]
        name = "default digits run (whole command)" if r["workload"] == "digits" else "MNIST 784-400-50 step, batch 128"
        cells = [f"{m[s]:.3g} {r['unit']}" + (f" ({threads_said(t[s])})" if s == "auto" else "") for s in SETTINGS]
        lines.append(f"| {name} | {r['busy']} | {' | '.join(cells)} | {r['auto_vs_best']:.2f}× |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 20 steps, 0 and 1 busy, 1 rep")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per cell (the median is reported)")
    parser.add_argument("--busy", type=int, nargs="+", default=None, help="competing busy processes (default 0 1 2)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    parser.add_argument("--child-step", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=150, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_step is not None:
        child_step(args.child_step, args.steps, args.warmup)
        return
    sys.path.insert(0, str(REPO))
    loads = args.busy if args.busy is not None else ([0, 1] if args.quick else [0, 1, 2])
    rows = measure(loads, 1 if args.quick else args.reps, args.quick)
    text = table(rows, machine())
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
