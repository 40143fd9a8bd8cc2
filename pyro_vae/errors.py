"""Errors the library raises on bad input. The CLI prints these without a traceback."""

from __future__ import annotations


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
