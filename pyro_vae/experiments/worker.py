"""One sweep run in its own process: train (or resume, or retry) one run folder, optionally evaluate it, and
write the outcome to ``RUN_DIR/result.json``. The spec: ``{"config", "out", "overrides", "mode", "epochs",
"evaluate"}``.

``mode``: ``new`` (a fresh folder), ``retry`` (replace a failed run's files), ``resume`` (continue from
``model.pt``), ``evaluate`` (a finished run without its result). A run stopped by a signal writes no result, so
the next sweep resumes it; a run that fails records its one-line error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

RESULT = "result.json"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, Exception) and type(e).__module__.startswith("pyro_vae") else \
        f"{type(e).__name__}: {text}"


def run_cell(spec: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Run ``spec`` (see the module doc); the result written, or None when a signal stopped the run."""
    from ..errors import PyroVAEError
    from ..run import load_run, resume, train
    from ..train.checkpoint import write_atomic
    from ..train.signals import Interrupted

    out, mode, k = Path(spec["out"]), spec["mode"], int(spec.get("evaluate") or 0)
    quiet = ["train.progress=false"]
    result: Dict[str, Any]
    try:
        if mode == "evaluate":
            run = load_run(out, imports=spec.get("imports", ()))
        elif mode == "resume":
            run = resume(out, [*quiet, f"train.epochs={spec['epochs']}"], imports=spec.get("imports", ()))
        else:
            run = train(spec["config"], out, [*spec["overrides"], *quiet], force=mode == "retry")
        last = run.history[-1]
        result = {"status": "done", "epochs": last["epoch"], "train_elbo": last["train_elbo"],
                  "test_elbo": last["test_elbo"], "seconds": round(sum(r.get("seconds", 0) for r in run.history), 2)}
        if k:
            result["evaluate"] = {"num_samples": k, **run.evaluate(k)}
    except Interrupted as e:  # the checkpoint is saved; the next sweep resumes from it
        print(f"pyro-vae: {e}", file=sys.stderr)
        return None
    except (PyroVAEError, Exception) as e:  # any failure of this run is recorded; the sweep goes on
        result = {"status": "failed", "error": _one_line(e)}
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / RESULT, json.dumps(result, indent=1).encode())
    return result


def child_main(spec: Dict[str, Any], log: str, threads: int) -> None:
    """A worker process's entry: output to ``log``, ``threads`` torch threads, run ``spec``; exit status 0 done,
    1 failed, 130 stopped by a signal."""
    import torch

    with open(log, "ab", buffering=0) as f:  # stdout and stderr of the run (and of any library it calls)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    torch.set_num_threads(threads)
    result = run_cell(spec)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(130 if result is None else 0 if result["status"] == "done" else 1)
