"""Checkpoints: a dict of tensors and plain values, written atomically, loaded without running code.

A checkpoint never holds a pickled object: only tensors, numbers, strings, lists, tuples and dicts,
so it loads with ``torch.load(..., weights_only=True)``, which refuses any file that would import or
call code while unpickling. Random-number states (torch, CUDA, Python, NumPy) are stored in that
plain form too (:func:`rng_state`), so an interrupted run resumes with the exact same draws.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

from ..errors import RunDirError
from ..rng import set_torch_rng_state, torch_rng_state

FORMAT = "pyro-vae/1"


def save_checkpoint(payload: Dict[str, Any], path: Union[str, Path]) -> None:
    """Write ``payload`` to ``path`` via a temp file, fsync and an atomic rename: a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)  # the rename itself survives a power cut


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load with ``weights_only=True``: a file that would execute code when unpickled is refused."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no checkpoint file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "pickle protocol 4 ..." from the weights-only unpickler
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        code = [line for line in lines if "GLOBAL" in line]
        if code:  # it names a function or class to import: code, not weights
            raise RunDirError(f"{path}: refused to load: the file would run code when unpickled ({code[0]}); "
                              "a pyro-vae checkpoint holds tensors and plain values only") from None
        reason = next((line for line in lines if line.startswith("Unsupported")), lines[-1] if lines else "")
        raise RunDirError(f"{path}: corrupt, truncated or not a checkpoint (refused by the weights-only "
                          f"loader: {reason})") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunDirError(f"{path}: corrupt, truncated or not a checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunDirError(f"{path}: not a pyro-vae checkpoint (expected format {FORMAT!r})")
    return payload


def rng_state() -> Dict[str, Any]:
    """Every global random stream a run draws from, as plain tensors/tuples (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    cpu, cuda = torch_rng_state()
    state: Dict[str, Any] = {
        "torch": cpu,
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
    }
    if cuda is not None:
        state["cuda"] = cuda
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore the streams saved by :func:`rng_state`."""
    set_torch_rng_state((state["torch"], state.get("cuda")))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
