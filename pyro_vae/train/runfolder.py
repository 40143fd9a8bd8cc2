"""Run folders are owned: ``--out`` checks before anything is written, and a lock while training.

* :func:`check_out` refuses an empty path, a file (or ``/dev/null``), a path below a file, an existing
  run (unless ``--resume``/``--force``) and a non-empty folder that is not a run (unless ``--force``).
* :func:`run_lock` holds ``run.lock`` (``{"pid", "host", "since"}``) for the whole training or resume:
  an exclusive ``flock`` on it where the OS has one (the kernel drops it when the holder dies, so a
  stale lock is taken over), else ``O_EXCL`` creation with a stale-PID check on the same host.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Union

from ..errors import OutputError, RunDirError, RunLocked, shown
from ..nofollow import open_nofollow, refuse_links

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None

LOCK = "run.lock"
RUN_FILES = ("model.pt", "best.pt", "model.prev.pt", "config.yaml", "metrics.jsonl")  # what marks a run


def run_files(folder: Path) -> List[str]:
    """The run files (``RUN_FILES``) present in ``folder``."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def _foreign_entries(folder: Path) -> List[str]:
    """Entries that are neither run files, pictures, the lock, nor temp files of a killed write."""
    ours = set(RUN_FILES) | {LOCK, "tensorboard"}
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in ours and not p.name.endswith(".png") and not (p.name.startswith(".")
                                                                                and p.name.endswith(".tmp")))


def check_out(out_dir: Union[str, Path], force: bool = False) -> Path:
    """``out_dir`` as a Path, if a new run may be written there; else an OutputError/RunDirError in one line."""
    if str(out_dir).strip() == "":
        raise OutputError("--out: empty path; give the folder to write the run into")
    if "\x00" in str(out_dir):
        raise OutputError(f"--out {str(out_dir)!r}: a path cannot contain a NUL byte")
    out = Path(out_dir)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            if folder == out:
                raise OutputError(f"--out {shown(out)}: is a file, not a folder (expected a new or empty folder)")
            raise OutputError(f"--out {shown(out)}: {shown(folder)} is a file, so no folder can be created below it")
    if not out.is_dir():
        return out
    try:
        held, foreign = run_files(out), _foreign_entries(out)
    except OSError as e:
        raise OutputError(f"--out {shown(out)}: cannot list the folder ({e.strerror or e})") from None
    if held and not force:
        if "model.pt" in held:
            raise RunDirError(f"{shown(out)} already holds a run (model.pt); continue it with: pyro-vae train --resume "
                              f"{shown(out)}, or replace it with --force")
        raise RunDirError(f"{shown(out)} holds files of a run ({', '.join(held)}) but no model.pt; choose another "
                          "--out to keep them, or replace them with --force")
    if foreign and not force:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        listed = ", ".join(shown(f) for f in foreign[:3]) + more
        raise OutputError(f"--out {shown(out)}: not empty and not a pyro-vae run ({listed}); choose a new or empty "
                          "folder, or write into it anyway with --force")
    return out


def refuse_planted_links(folder: Path) -> None:
    """Refuse a run folder where a file the run writes (run files, the lock, pictures) is a symbolic link: one
    line before anything is written, the link's target untouched."""
    refuse_links(folder, (*RUN_FILES, LOCK, "tensorboard"), suffixes=(".png",))


def check_not_replaced(config_file: Union[str, Path, None], out: Path) -> None:
    """Refuse ``--force`` into a folder whose run files include ``config_file`` itself (the config being
    trained would be deleted and replaced)."""
    if config_file is None or not Path(config_file).is_file():
        return
    for name in run_files(out):
        if os.path.samefile(config_file, out / name):
            raise OutputError(f"--out {shown(out)}: --force would replace {shown(out / name)}, the config file being "
                              "trained; copy it out of the folder first, or choose another --out")


def make_folder(out: Path) -> None:
    """``mkdir -p out`` and check it can be written; an OutputError in one line if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"--out {shown(out)}: cannot create the folder ({e.strerror or e})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"--out {shown(out)}: the folder is not writable")


def _holder(path: Path) -> Optional[dict]:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _locked(folder: Path, holder: Optional[dict]) -> RunLocked:
    who = (f"process {holder.get('pid')} on {holder.get('host')} (since {holder.get('since')})"
           if holder else "another process")
    return RunLocked(f"{folder}: in use by {who}: one training or resume per run folder; wait for it to end, "
                     f"or remove {folder / LOCK} if that process is gone")


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/run.lock`` for the block; RunLocked when a live process holds it."""
    path = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    fd = _acquire_flock(folder, path) if fcntl is not None else _acquire_excl(folder, path, me)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode())
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        raise OutputError(f"{path}: cannot write the lock file ({e.strerror or e})") from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it: a waiting process then creates a new file
        os.close(fd)


def _acquire_flock(folder: Path, path: Path) -> int:
    for _ in range(10):
        try:
            fd = open_nofollow(path, os.O_CREAT | os.O_RDWR)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _locked(folder, _holder(path)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # (else the holder removed the file as we opened it: try the new one)
            return fd
        os.close(fd)
    raise _locked(folder, None)  # pragma: no cover


def _acquire_excl(folder: Path, path: Path, me: dict) -> int:  # pragma: no cover  (no flock)
    for _ in range(2):
        try:
            return open_nofollow(path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        except FileExistsError:
            holder = _holder(path)
            stale = holder is not None and holder.get("host") == me["host"] and not _alive(holder.get("pid"))
            if not stale:
                raise _locked(folder, holder) from None
            path.unlink(missing_ok=True)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file ({e.strerror or e})") from None
    raise _locked(folder, _holder(path))
