"""Time a sweep against the same runs one after another: 8 default digits runs (seeds 0..7).

*Sequential*: ``pyro-vae train seed=S --out DIR`` for each seed in turn, each a fresh process with the default
threads, as a user would type them. *Sweep*: ``pyro-vae sweep seed=0,...,7 --workers 2 --out DIR``. Both
write pictures and use the same config; the goal is a sweep wall time at most 0.6 × the sequential one on a
2-core machine. Run on a quiet machine:

    python benchmarks/sweep_speed.py                 # 8 runs of the default 100 epochs
    python benchmarks/sweep_speed.py --quick         # 4 runs of 5 epochs: checks the script works
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's pyro_vae, not an installed copy

from pyro_vae.experiments.runner import available_cpus  # noqa: E402


def timed(command: list, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4 runs of 5 epochs")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    runs, extra = (4, ["train.epochs=5"]) if args.quick else (args.runs, [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cli = [sys.executable, "-m", "pyro_vae"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sequential = sum(timed([*cli, "train", f"seed={s}", "train.progress=false", *extra, "--out",
                                str(root / f"seq-{s}")], env) for s in range(runs))
        seeds = ",".join(map(str, range(runs)))
        swept = timed([*cli, "sweep", f"seed={seeds}", *extra, "--workers", str(args.workers), "--out",
                       str(root / "sweep")], env)
    result = {"runs": runs, "workers": args.workers, "cpus": available_cpus(), "extra": extra,
              "sequential_s": round(sequential, 1), "sweep_s": round(swept, 1), "ratio": round(swept / sequential, 3)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
