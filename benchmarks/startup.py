"""Where the README's default run spends its seconds: start-up, training, checkpoints, pictures; and ``--help``.

Times, each in a fresh process (median of ``--reps``), for one checkout or several side by side (``--checkout``,
e.g. an older tree to compare with):

* ``pyro-vae --help`` (wall seconds of the command);
* the default run ``pyro-vae train --out DIR`` (wall seconds of the command), and inside it, with timers
  wrapped around the library's own functions: importing the library, building data/model/engine, the training
  steps, the per-epoch held-out ELBO, the per-epoch files (checkpoints, config, metrics), the final pictures.

    python benchmarks/startup.py                                  # this checkout, a markdown table
    python benchmarks/startup.py --checkout /path/to/before .     # two checkouts, one column each
    python benchmarks/startup.py --quick                          # a smoke run: 2 epochs, 1 repetition

Run it on a quiet machine; by default the children run with ``OMP_NUM_THREADS`` unset (``train.threads: auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
PHASES = ("import", "build", "steps", "held-out ELBO", "epoch files", "pictures", "other")

CHILD = r'''
import json, sys, time
start = time.perf_counter()
import pyro_vae.cli, pyro_vae.run, pyro_vae.train.trainer
run, trainer = sys.modules["pyro_vae.run"], sys.modules["pyro_vae.train.trainer"]
spent = {"import": time.perf_counter() - start}

def timed(owner, name, phase):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)

timed(run, "_build", "build")
timed(trainer.Trainer, "train_epoch", "steps")
timed(trainer, "test_elbo", "held-out ELBO")
files = sys.modules.get("pyro_vae.train.recorders", run)  # the run folder's writers (in run.py before the recorders)
for name in ("save_checkpoint", "write_file", "_write"):
    if hasattr(files, name):
        timed(files, name, "epoch files")
timed(run.Run, "write_pictures", "pictures")
code = pyro_vae.cli.main(sys.argv[1:])
spent["total in process"] = time.perf_counter() - start
print(json.dumps(spent))
sys.exit(code)
'''


def env_for(checkout: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    return env


def time_help(checkout: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyro_vae", "--help"], check=True, capture_output=True,
                   env=env_for(checkout), cwd=checkout)
    return time.perf_counter() - start


def time_run(checkout: Path, quick: bool) -> Dict[str, float]:
    """Phase seconds and the wall seconds of one default run from ``checkout``."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["train", "--out", str(Path(tmp) / "digits"), "train.progress=false"] + (["train.epochs=2"] if quick else [])
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True,
                              env=env_for(checkout), cwd=tmp)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: the default run failed: {done.stderr.strip().splitlines()[-1:]}")
    spent = json.loads(done.stdout.strip().splitlines()[-1])
    named = sum(spent.get(p, 0.0) for p in PHASES if p != "other")
    spent["other"] = spent.pop("total in process") - named  # evaluation bookkeeping, progress, argument parsing
    spent["interpreter start and exit"] = wall - named - spent["other"]
    spent["wall"] = wall
    return spent


def measure(checkouts: List[Path], reps: int, quick: bool) -> Dict[str, Dict[str, float]]:
    samples: Dict[str, Dict[str, List[float]]] = {str(c): {} for c in checkouts}
    for _ in range(reps):
        for checkout in checkouts:  # in turns
            row = {"--help": time_help(checkout), **time_run(checkout, quick)}
            for key, value in row.items():
                samples[str(checkout)].setdefault(key, []).append(value)
    return {c: {k: statistics.median(v) for k, v in rows.items()} for c, rows in samples.items()}


def table(results: Dict[str, Dict[str, float]]) -> str:
    names = list(results)
    keys = ["wall", *PHASES, "interpreter start and exit", "--help"]
    lines = ["| seconds | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for key in keys:
        label = "**whole default run (wall)**" if key == "wall" else f"`pyro-vae --help`" if key == "--help" else key
        lines.append(f"| {label} | " + " | ".join(f"{results[n].get(key, 0.0):.2f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", nargs="+", type=Path, default=[REPO], help="source trees to time (default: this)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 repetition")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    results = measure([c.resolve() for c in args.checkout], 1 if args.quick else args.reps, args.quick)
    text = table(results)
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
