"""Registries map the config name of a component (``type: gmm``) to its class and typed config.

Adding a component is one file and one line::

    @PRIORS.register("laplace", LaplacePriorConfig)
    class LaplacePrior(Prior): ...

The built-in components register when their packages are imported; the first lookup in any registry
imports them (so ``import pyro_vae`` stays light: torch and Pyro load when a component is first needed).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, List, Type, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: the packages whose modules register the built-in components
COMPONENT_PACKAGES = ("pyro_vae.data", "pyro_vae.nets", "pyro_vae.priors", "pyro_vae.likelihoods", "pyro_vae.models",
                      "pyro_vae.infer")
_loaded = False


def load_components() -> None:
    """Import the built-in component packages (once), registering every built-in component."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a lookup while they import does not start over
    for name in COMPONENT_PACKAGES:
        importlib.import_module(name)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered component: its name, class, typed config and one-line description."""

    name: str
    cls: Type[T]
    config_cls: type
    doc: str


class Registry(Generic[T]):
    """A name -> (class, config dataclass) table for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Entry[T]] = {}

    def register(self, name: str, config_cls: type) -> Callable[[Type[T]], Type[T]]:
        """Class decorator: register ``cls`` under ``name`` with config dataclass ``config_cls``."""
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config {config_cls!r} is not a dataclass")
        type_field = {f.name: f for f in dataclasses.fields(config_cls)}.get("type")
        if type_field is None or type_field.default != name:
            raise TypeError(f"{self.kind} {name!r}: {config_cls.__name__} needs a field `type: str = {name!r}`")

        def decorator(cls: Type[T]) -> Type[T]:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            doc = (cls.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, cls, config_cls, doc[0] if doc else "")
            return cls

        return decorator

    def __contains__(self, name: object) -> bool:
        load_components()
        return name in self._entries

    def names(self) -> List[str]:
        load_components()
        return sorted(self._entries)

    def entries(self) -> List[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def get(self, name: str, key: str = "type") -> Entry[T]:
        """The entry for ``name``; an unknown name is a :class:`ConfigError` listing the allowed ones."""
        load_components()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"{key}: unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}"
            ) from None

    def build(self, config: Any, *args: Any, **kwargs: Any) -> T:
        """Instantiate the class registered for ``config.type`` as ``cls(config, *args, **kwargs)``."""
        return self.get(config.type).cls(config, *args, **kwargs)


PRIORS: Registry = Registry("prior")
LIKELIHOODS: Registry = Registry("likelihood")
NETWORKS: Registry = Registry("network")
MODELS: Registry = Registry("model")
DATASETS: Registry = Registry("dataset")
OBJECTIVES: Registry = Registry("objective")
