"""Checkpoints: a dict of tensors and plain values, written atomically, verified by a digest, loaded
without running code.

A checkpoint never holds a pickled object: only tensors, numbers, strings, lists, tuples and dicts,
so it loads with ``torch.load(..., weights_only=True)``, which refuses any file that would import or
call code while unpickling. Random-number states (torch, CUDA, Python, NumPy) are stored in that
plain form too (:func:`rng_state`), so an interrupted run resumes with the exact same draws.

Integrity: the file is torch's zip archive whose zip comment (the file's last 80 bytes) is
``pyro-vae-sha256:`` + SHA-256(every byte before the digest), i.e. weights, optimizer state, trainer
state and the archive's own structure. Any changed byte, anywhere, fails the check, and the file still
loads with a plain ``torch.load``. After the digest, :func:`check_payload` validates the structure
(types, ranges, finite weights) before anything uses it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import random
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from ..errors import CheckpointCorrupt, RunDirError, TrainingError
from ..nofollow import refuse_link, write_bytes
from ..resources import file_limit, size
from ..rng import set_torch_rng_state, torch_rng_state

FORMAT = "pyro-vae/2"  # with the SHA-256 trailer
LEGACY_FORMAT = "pyro-vae/1"  # written before digests: loaded with the structural checks only
TAG = b"pyro-vae-sha256:"
TRAILER = len(TAG) + 64  # tag + hex digest: the zip comment
PREVIOUS = "model.prev.pt"  # the previous model.pt, kept at each save of model.pt (save_checkpoint(keep_previous))
ALTERNATIVES = (PREVIOUS, "best.pt")
HISTORY_FIELDS = {"epoch": int, "step": int, "train_elbo": float, "test_elbo": float, "seconds": float}
_EOCD = b"PK\x05\x06"  # zip end-of-central-directory record: its last 2 bytes are the comment length


def encode(payload: Dict[str, Any]) -> bytes:
    """``payload`` as torch's zip archive with the digest as its zip comment (see the module doc)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    raw = buffer.getvalue()
    if raw[-22:-18] != _EOCD or raw[-2:] != b"\x00\x00":  # pragma: no cover  (torch always ends so)
        raise RuntimeError("torch.save wrote an archive without a plain end record; cannot add the digest")
    body = raw[:-2] + struct.pack("<H", TRAILER) + TAG
    return body + hashlib.sha256(body).hexdigest().encode("ascii")


def nonfinite_tensors(tree: Any, prefix: str = "") -> List[str]:
    """Dotted names of the floating-point tensors in ``tree`` (nested dicts/lists) holding NaN or ±Inf."""
    bad: List[str] = []
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            bad.append(prefix or "tensor")
    elif isinstance(tree, dict):
        for key, value in tree.items():
            bad += nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            bad += nonfinite_tensors(value, f"{prefix}[{i}]")
    return bad


def save_checkpoint(payload: Dict[str, Any], path: Union[str, Path], keep_previous: bool = False) -> None:
    """Write ``payload`` to ``path`` via a temp file, fsync and an atomic rename: a crash never leaves half
    a file. Non-finite weights or optimizer state are refused (TrainingError): nothing non-finite is saved.
    ``keep_previous``: the file being replaced stays as ``model.prev.pt`` (hard link, else a copy), so
    ``path`` exists at every instant. A failed write (full disk, no permission) is a RunDirError and
    the old file is kept."""
    path = Path(path)
    bad = nonfinite_tensors({"weights": payload.get("state_dict"),
                             "optimizer": (payload.get("trainer") or {}).get("optimizer")})
    if bad:
        raise TrainingError(f"{path}: refused to save non-finite values ({', '.join(bad[:3])}"
                            f"{' and more' if len(bad) > 3 else ''}); the previous file is kept")
    data = encode(payload)
    refuse_link(path)
    try:
        if keep_previous and path.is_file():
            _keep_copy(path, refuse_link(path.parent / PREVIOUS))
        write_bytes(path, data, fsync=True)
    except OSError as e:
        raise RunDirError(f"{path}: cannot write checkpoint ({e.strerror or e}); the previous "
                          f"{path.name} is kept") from None
    _fsync_dir(path.parent)  # the rename itself survives a power cut


def _keep_copy(src: Path, dst: Path) -> None:
    """``dst`` := ``src`` atomically (a hard link, or a copy where links are not supported)."""
    tmp = dst.parent / f".{dst.name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def clean_stray_temp_files(folder: Path) -> List[str]:
    """Remove the temp files of writes that were killed half-way (``.<name>.*.tmp``); returns their names."""
    removed = []
    for p in folder.glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


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


def write_atomic(path: Union[str, Path], data: bytes) -> None:
    """``path`` := ``data`` via a temp file and an atomic rename (for config.yaml and metrics.jsonl); a link
    in ``path``'s place is refused (:func:`pyro_vae.nofollow.write_bytes`)."""
    write_bytes(path, data)


def verify(raw: bytes) -> Optional[bool]:
    """True: the digest matches; False: a digest is there but does not match; None: no digest trailer."""
    if len(raw) < TRAILER + 22 or raw[-TRAILER:-64] != TAG:
        return None
    return hashlib.sha256(raw[:-64]).hexdigest().encode("ascii") == raw[-64:]


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu",
                    alternatives: bool = True) -> Dict[str, Any]:
    """Verify the digest, load with ``weights_only=True`` (a file that would execute code when unpickled
    is refused) and check the structure (:func:`check_payload`). Any failure is a
    :class:`~pyro_vae.errors.CheckpointCorrupt` naming the file and (``alternatives``) the intact ones
    beside it; a file that would run code is a RunDirError."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no checkpoint file")
    try:
        length, limit = path.stat().st_size, file_limit()
        if length > limit:  # read whole and unpickled: refused before reading a byte
            raise RunDirError(f"{path}: {size(length)}, over the {size(limit)} a checkpoint may have here "
                              "(half this machine's memory, or PYRO_VAE_MEMORY_LIMIT); not read")
        raw = path.read_bytes()
    except OSError as e:
        raise RunDirError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None

    def corrupt(what: str) -> CheckpointCorrupt:
        return CheckpointCorrupt(f"{path}: {what}{_offer(path) if alternatives else ''}")

    digest = verify(raw)
    if digest is False:
        raise corrupt("corrupt: SHA-256 digest mismatch (the file changed after it was written)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "pickle protocol 4 ..." from the weights-only unpickler
            payload = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        code = [line for line in lines if "GLOBAL" in line]
        if code:  # it names a function or class to import: code, not weights
            raise RunDirError(f"{path}: refused to load: the file would run code when unpickled ({code[0]}); "
                              "a pyro-vae checkpoint holds tensors and plain values only") from None
        reason = next((line for line in lines if line.startswith("Unsupported")), lines[-1] if lines else "")
        raise corrupt(f"corrupt, truncated or not a checkpoint (refused by the weights-only loader: {reason})") \
            from None
    except Exception as e:  # torch's loaders fail in many ways on garbage (KeyError, RuntimeError, EOFError, ...)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise corrupt(f"corrupt, truncated or not a checkpoint ({type(e).__name__}: {first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, LEGACY_FORMAT):
        raise corrupt(f"not a pyro-vae checkpoint (expected format {FORMAT!r})")
    if payload["format"] == FORMAT and digest is None:
        raise corrupt("corrupt: its SHA-256 digest is missing")
    problem = check_payload(payload)
    if problem:
        raise corrupt(f"invalid checkpoint: {problem}")
    return payload


def _offer(path: Path) -> str:
    """'; intact: …' with the checkpoints beside ``path`` that pass every check, and how to use one."""
    good = []
    for name in ALTERNATIVES:
        other = path.parent / name
        if other.name == path.name or not other.is_file():
            continue
        try:
            payload = load_checkpoint(other, alternatives=False)
        except RunDirError:
            continue
        good.append(f"{name} (epoch {len(payload.get('history', []))})")
    if not good:
        return "; no intact best.pt or model.prev.pt beside it"
    first = good[0].split()[0]
    return (f"; intact: {', '.join(good)}: to continue from one, "
            f"cp {path.parent / first} {path}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_history(rows: Any, where: str = "history") -> Optional[str]:
    """None when ``rows`` is a list of metric rows (int epoch/step, finite ELBOs and seconds), else why not."""
    if not isinstance(rows, list):
        return f"{where}: expected a list of metric rows, got {type(rows).__name__}"
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"{where}[{i}]: expected a mapping, got {type(row).__name__}"
        for key, kind in HISTORY_FIELDS.items():
            value = row.get(key)
            ok = _count(value) if kind is int else _number(value)
            if not ok:
                return f"{where}[{i}].{key}: expected {'an integer >= 0' if kind is int else 'a finite number'}, " \
                       f"got {value!r}"[:200]
        if row["epoch"] != i + 1:
            return f"{where}[{i}].epoch: expected {i + 1}, got {row['epoch']}"
    return None


def check_payload(payload: Dict[str, Any]) -> Optional[str]:
    """None when the payload has the shape a run writes (weights finite, history rows well-typed, trainer
    state in range), else the first problem found."""
    weights = payload.get("state_dict")
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        return "state_dict: expected a mapping of names to tensors"
    bad = nonfinite_tensors(weights)
    if bad:
        return f"non-finite weights ({', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''})"
    if not isinstance(payload.get("config"), dict):
        return "config: expected a mapping"
    shape = payload.get("data_shape")
    if not isinstance(shape, (list, tuple)) or not shape or not all(_count(d) and d > 0 for d in shape):
        return f"data_shape: expected a list of integers >= 1, got {shape!r}"[:200]
    if not _count(payload.get("num_classes")):
        return f"num_classes: expected an integer >= 0, got {payload.get('num_classes')!r}"[:200]
    problem = check_history(payload.get("history", []))
    if problem or "trainer" not in payload:
        return problem
    return check_trainer_state(payload["trainer"], len(payload.get("history", [])))


def check_trainer_state(state: Any, epochs_done: int) -> Optional[str]:
    """None when ``state`` (what :meth:`Trainer.state` wrote) has the right types and consistent ranges."""
    if not isinstance(state, dict):
        return f"trainer: expected a mapping, got {type(state).__name__}"
    for key in ("epoch", "step", "batch"):
        if not _count(state.get(key, 0)):
            return f"trainer.{key}: expected an integer >= 0, got {state.get(key)!r}"[:200]
    if state.get("epoch", 0) != epochs_done:
        return f"trainer.epoch: {state.get('epoch')!r} but the history holds {epochs_done} epochs"
    problem = check_history(state.get("history", []), "trainer.history")
    if problem:
        return problem
    partial = state.get("partial", (0.0, 0))
    if not (isinstance(partial, (list, tuple)) and len(partial) == 2 and _number(partial[0]) and _count(partial[1])):
        return f"trainer.partial: expected [finite number, integer >= 0], got {partial!r}"[:200]
    generator = state.get("generator")
    if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
        return "trainer.generator: expected a byte tensor (the batch-order generator's state)"
    if not isinstance(state.get("optimizer"), dict):
        return "trainer.optimizer: expected a mapping (the optimizer's state)"
    bad = nonfinite_tensors(state["optimizer"])
    if bad:
        return f"non-finite optimizer state ({', '.join(bad[:3])})"
    if "start_elbo" in state and state["start_elbo"] is not None and not _number(state["start_elbo"]):
        return f"trainer.start_elbo: expected a finite number, got {state['start_elbo']!r}"[:200]
    return None


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
