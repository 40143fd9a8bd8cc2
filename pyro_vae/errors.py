"""Errors the library raises on bad input. The CLI prints these without a traceback."""

from __future__ import annotations

from typing import Any


def shown(path: Any) -> str:
    """``path`` for a one-line message: as is when printable, else quoted with escapes (no raw newlines)."""
    text = str(path)
    return text if text.isprintable() else repr(text)


class PyroVAEError(Exception):
    """Base class: a user-facing error with a specific, actionable message."""


class ConfigError(PyroVAEError, ValueError):
    """A config key is unknown, has the wrong type, or names an unknown component."""


class ImportPathError(ConfigError):
    """A component named by import path (``type: my_project.priors:StudentT``) does not import, or does not
    name a class of the right kind with a typed config."""


class DataError(PyroVAEError, ValueError):
    """A dataset file is missing, truncated, or holds data of the wrong shape or range."""


class RunDirError(PyroVAEError, ValueError):
    """A folder given as a run directory is not one (no ``model.pt``/``config.yaml``) or is corrupt."""


class TrainingError(PyroVAEError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


class CheckpointCorrupt(RunDirError):
    """A checkpoint fails its integrity digest or its structural checks; the message names the intact
    alternatives (``best.pt``, ``model.prev.pt``) when there are any."""


class RunLocked(RunDirError):
    """Another live process (PID and host in the folder's ``run.lock``) is training into this run folder."""


class OutputError(PyroVAEError, ValueError):
    """An output path (``--out``, ``-o``) cannot be written: missing folder, a file in the way, no permission."""


class ResourceError(PyroVAEError, ValueError):
    """A request would need more memory than the limit (e.g. ``sample -n``); the message gives the estimate."""
