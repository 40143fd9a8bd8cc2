"""Checkpoints: a dict of tensors and plain values, written atomically, loaded without running code."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

from ..errors import RunDirError

FORMAT = "pyro-vae/1"


def save_checkpoint(payload: Dict[str, Any], path: Union[str, Path]) -> None:
    """Write ``payload`` to ``path`` via a temp file and an atomic rename: a crash never leaves half a file."""
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


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load with ``weights_only=True``: a file that would execute code when unpickled is refused."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise RunDirError(f"{path}: refused to load (not a plain-weights checkpoint: {str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise RunDirError(f"{path}: corrupt or truncated checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RunDirError(f"{path}: not a pyro-vae checkpoint (expected format {FORMAT!r})")
    return payload
