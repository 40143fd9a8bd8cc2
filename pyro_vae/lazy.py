"""A package's names loaded on first use: the module ``__getattr__`` (PEP 562) of a package that re-exports
names of its submodules without importing them (and what they import, e.g. torch) when it is imported."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict


def lazy_exports(package: str, exports: Dict[str, str], namespace: Dict[str, Any]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: name -> ``getattr(package.exports[name], name)``, imported on first use
    and then kept in the package's ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value
        return value

    return __getattr__
