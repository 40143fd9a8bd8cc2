"""Writing files without following symbolic links: what the library writes never lands in a link's target.

Every file of a run folder (checkpoints, ``config.yaml``, ``metrics.jsonl``, ``run.lock``, the pictures) is
written by :func:`write_bytes` (a temp file in the same folder, renamed over the name: the rename replaces
a directory entry and never writes through a link), appended to by :func:`append_text` or opened by
:func:`open_nofollow` (``O_NOFOLLOW``). A link found in a file's place is refused in one line
(:class:`~pyro_vae.errors.OutputError`) and its target is left untouched.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable, List, Union

from .errors import OutputError, shown

PathLike = Union[str, Path]
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # (0 where the OS has none: the lstat check still refuses links)


def _link_error(path: Path) -> OutputError:
    return OutputError(f"{shown(path)}: is a symbolic link; pyro-vae never writes through a link (its target is "
                       "left untouched): remove the link or choose another folder")


def refuse_link(path: PathLike) -> Path:
    """``path``, unless a symbolic link is in its place (an OutputError naming it)."""
    path = Path(path)
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise _link_error(path)
    except FileNotFoundError:
        pass
    return path


def refuse_links(folder: PathLike, names: Iterable[str], suffixes: Iterable[str] = ()) -> None:
    """Refuse (one line) a symbolic link in ``folder`` named one of ``names`` or ending in one of ``suffixes``:
    checked before a run writes anything, so a planted link stops it before the first byte."""
    folder, names, suffixes = Path(folder), set(names), tuple(suffixes)
    try:
        entries: List[os.DirEntry] = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if (entry.name in names or entry.name.endswith(suffixes)) and entry.is_symlink():
            raise _link_error(folder / entry.name)


def open_nofollow(path: PathLike, flags: int, mode: int = 0o644) -> int:
    """``os.open(path, flags | O_NOFOLLOW)``; a link in ``path``'s place is an OutputError naming it."""
    path = refuse_link(path)
    try:
        return os.open(path, flags | O_NOFOLLOW, mode)
    except OSError as e:
        if os.path.islink(path):  # ELOOP: a link appeared after the check
            raise _link_error(path) from None
        raise


def write_bytes(path: PathLike, data: bytes, fsync: bool = False) -> None:
    """``path`` := ``data`` atomically (a temp file beside it, renamed over it); a link in its place is refused."""
    path = refuse_link(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_with(path: PathLike, write: Callable[[io.BytesIO], None]) -> None:
    """``write(buffer)`` (e.g. a figure's ``savefig``), then the buffer's bytes to ``path`` by :func:`write_bytes`."""
    refuse_link(path)  # before the work of drawing
    buffer = io.BytesIO()
    write(buffer)
    write_bytes(path, buffer.getvalue())


def append_text(path: PathLike, text: str) -> None:
    """Append ``text`` to ``path`` (created if missing); a link in its place is refused."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a") as f:
        f.write(text)
