"""Registries map the config name of a component (``type: gmm``) to its class and typed config.

Adding a component is one file and one line::

    @PRIORS.register("laplace", LaplacePriorConfig)
    class LaplacePrior(Prior): ...

A component in the user's own module needs no registration: ``type: my_project.priors:StudentT`` (an
import path ``module:Class``) imports ``my_project.priors`` and takes ``StudentT``, which must be of the
registry's kind (e.g. a subclass of :class:`~pyro_vae.priors.base.Prior`) and carry its typed config,
either as a dataclass attribute ``Config`` with a field ``type: str`` or by registering itself on import.
The import path is what ``config.yaml`` keeps. Loading a run back never imports a module on the run's say:
inside :func:`only_imported` (what ``load_run``, ``resume`` and ``compare_runs`` parse a run's config in) an
import path resolves only when its module is already imported or was allowed explicitly (``imports=[...]``,
``--import MODULE``); anything else is a one-line :class:`~pyro_vae.errors.ImportPathError`.

The built-in components register when their packages are imported; the first lookup in any registry
imports them (so ``import pyro_vae`` stays light: torch and Pyro load when a component is first needed).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterator, List, Optional, Sequence, Tuple, Type, TypeVar

from .errors import ConfigError, ImportPathError

T = TypeVar("T")
IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

#: the packages whose modules register the built-in components
COMPONENT_PACKAGES = ("pyro_vae.data", "pyro_vae.nets", "pyro_vae.priors", "pyro_vae.guides", "pyro_vae.likelihoods",
                      "pyro_vae.models", "pyro_vae.infer")
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


def is_import_path(name: str) -> bool:
    """True for ``module.sub:Class`` (a component named by where it is defined)."""
    return ":" in name


#: inside :func:`only_imported`: the modules (and their submodules) a run's config may import; None outside
_allowed: ContextVar[Optional[Tuple[str, ...]]] = ContextVar("pyro_vae_allowed_imports", default=None)


@contextmanager
def only_imported(imports: Sequence[str] = (), source: str = "") -> Iterator[None]:
    """Within the block an import path ``module:Class`` resolves only when ``module`` is already imported
    (``sys.modules``), is pyro_vae's own, or is (below) one of ``imports``, each imported here first: a run's
    config (``source``, a file) never makes the process import code the user did not ask for."""
    names = tuple(imports)
    import_modules(names, key="--import")
    token = _allowed.set(("pyro_vae", *names))
    try:
        yield
    finally:
        _allowed.reset(token)


def import_modules(names: Sequence[str], key: str = "--import") -> None:
    """Import each of ``names`` (the user's own modules, allowed explicitly); a failure is one line naming it."""
    for name in names:
        if not re.match(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$", str(name)):
            raise ImportPathError(f"{key} {str(name)!r}: not a module name; expected e.g. my_project.priors")
        import_module(name, key)


def allowed(module_name: str) -> bool:
    """Whether an import path may import ``module_name`` now (always, outside :func:`only_imported`)."""
    names = _allowed.get()
    if names is None or module_name in sys.modules:
        return True
    return any(module_name == n or module_name.startswith(n + ".") for n in names)


def import_module(module_name: str, key: str, what: str = "") -> Any:
    """Import ``module_name``; any failure (missing, a SyntaxError, anything its code raises) is a one-line ConfigError."""
    if not allowed(module_name):
        raise ImportPathError(f"{key}: names module {module_name!r}{what}, which is not imported: loading a run "
                              "imports no code on its own; if you trust that module, allow it with "
                              f"--import {module_name} (CLI) or imports=[{module_name!r}] (Python)")
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportPathError(f"{key}: cannot import module {module_name!r}{what} ({type(e).__name__}: {reason}); "
                          "expected a module on the Python path (installed, or on PYTHONPATH)") from None


def import_object(path: str, key: str = "type") -> Any:
    """The object ``Name`` of ``module:Name``, importing the module; any failure is a one-line ConfigError."""
    if not IMPORT_PATH.match(path):
        raise ImportPathError(f"{key}: {path!r} is not an import path; expected module:Class, e.g. my_project.priors:StudentT")
    module_name, _, attr = path.partition(":")
    obj = import_module(module_name, key, f" of {path!r}")
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportPathError(f"{key}: module {module_name!r} has no {attr!r} (import path {path!r})")
        obj = getattr(obj, part)
    return obj


def _doc(cls: type) -> str:
    lines = (cls.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


class Registry(Generic[T]):
    """A name -> (class, config dataclass) table for one kind of component.

    ``base`` (an import path, resolved lazily) and ``needs`` (attribute names) say what a class given by
    import path must be: a subclass of ``base`` and/or have each attribute in ``needs``.
    """

    def __init__(self, kind: str, base: str = "", needs: Sequence[str] = ()) -> None:
        self.kind, self.base, self.needs = kind, base, tuple(needs)
        self._entries: Dict[str, Entry[T]] = {}
        self._imported: Dict[str, Entry[T]] = {}  # import path -> entry, for `pyro-vae list`

    def register(self, name: str, config_cls: type) -> Callable[[Type[T]], Type[T]]:
        """Class decorator: register ``cls`` under ``name`` with config dataclass ``config_cls``."""
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config {config_cls!r} is not a dataclass")
        type_field = {f.name: f for f in dataclasses.fields(config_cls)}.get("type")
        if type_field is None or type_field.default != name:
            raise TypeError(f"{self.kind} {name!r}: {config_cls.__name__} needs a field `type: str = {name!r}`")

        def decorator(cls: Type[T]) -> Type[T]:
            old = self._entries.get(name)
            if old is not None and (old.cls.__module__, old.cls.__qualname__) != (cls.__module__, cls.__qualname__):
                raise KeyError(f"{self.kind} {name!r} is already registered (by {old.cls.__module__}."
                               f"{old.cls.__qualname__})")  # the same class defined again (a re-run cell) replaces it
            self._entries[name] = Entry(name, cls, config_cls, _doc(cls))
            return cls

        return decorator

    def __contains__(self, name: object) -> bool:
        load_components()
        return name in self._entries

    def names(self) -> List[str]:
        load_components()
        return sorted(self._entries)

    def entries(self) -> List[Entry[T]]:
        """The registered entries by name, then those resolved from import paths (``module:Class``)."""
        return [self._entries[n] for n in self.names()] + [self._imported[p] for p in sorted(self._imported)]

    def get(self, name: str, key: str = "type") -> Entry[T]:
        """The entry for ``name`` or import path ``module:Class``; anything else is a :class:`ConfigError`."""
        load_components()
        if name in self._entries:
            return self._entries[name]
        if is_import_path(name):
            return self.resolve(name, key)
        raise ConfigError(f"{key}: unknown {self.kind} {name!r}; allowed: {', '.join(self.names())} "
                          f"(or an import path module:Class)")

    def resolve(self, path: str, key: str = "type") -> Entry[T]:
        """The entry for the class at import path ``path`` (imported now; checked to be of this kind)."""
        cls = import_object(path, key)
        cached = self._imported.get(path)
        if cached is not None and cached.cls is cls:
            return cached
        problem = self.mismatch(cls)
        if problem:
            raise ImportPathError(f"{key}: {path} {problem}")
        config_cls = self.config_of(cls)
        if config_cls is None:
            raise ImportPathError(f"{key}: {path} has no typed config; expected a dataclass attribute `Config` with a "
                              f"field `type: str`, or registration with pyro_vae.{self.kind.upper()}S.register(name, ConfigClass)")
        entry = Entry(path, cls, config_cls, _doc(cls))
        self._imported[path] = entry
        return entry

    def mismatch(self, cls: Any) -> str:
        """Why ``cls`` is not a component of this kind ('' if it is one)."""
        if not isinstance(cls, type):
            return f"is not a class (got {type(cls).__name__}); expected a {self.kind} class"
        if self.base:
            base = import_object(self.base)
            if not issubclass(cls, base):
                return f"is not a {self.kind}: expected a subclass of {self.base.replace(':', '.')}"
        missing = [n for n in self.needs if not callable(getattr(cls, n, None))]
        if missing:
            return f"is not a {self.kind}: expected a class with {' and '.join(missing)}"
        return ""

    def config_of(self, cls: type) -> Optional[type]:
        """``cls``'s typed config: the one it was registered with, else its dataclass ``Config`` with a ``type``."""
        load_components()
        for entry in self._entries.values():
            if entry.cls is cls:
                return entry.config_cls
        config_cls = getattr(cls, "Config", None)
        if isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls) and \
                "type" in {f.name for f in dataclasses.fields(config_cls)}:
            return config_cls
        return None

    def build(self, config: Any, *args: Any, **kwargs: Any) -> T:
        """Instantiate the class registered for ``config.type`` as ``cls(config, *args, **kwargs)``."""
        return self.get(config.type).cls(config, *args, **kwargs)


PRIORS: Registry = Registry("prior", base="pyro_vae.priors.base:Prior")
GUIDES: Registry = Registry("guide", base="pyro_vae.guides.base:Guide")
LIKELIHOODS: Registry = Registry("likelihood", base="pyro_vae.likelihoods.base:Likelihood")
NETWORKS: Registry = Registry("network", needs=("encoder", "decoder"))
MODELS: Registry = Registry("model", base="pyro_vae.models.base:GenerativeModel")
DATASETS: Registry = Registry("dataset", needs=("load",))
OBJECTIVES: Registry = Registry("objective", needs=("build",))
REGISTRIES = (MODELS, DATASETS, NETWORKS, PRIORS, GUIDES, LIKELIHOODS, OBJECTIVES)


def import_components(module_name: str) -> List[Entry]:
    """Import ``module_name`` (its decorators register what it registers) and add every class it defines
    that is a component of some kind with a typed config, under its import path; the entries added."""
    load_components()
    module = import_module(module_name, key="--import")
    found: List[Entry] = []
    for attr, obj in sorted(vars(module).items()):
        if not isinstance(obj, type) or obj.__module__ != module.__name__:
            continue
        for table in REGISTRIES:
            if any(e.cls is obj for e in table._entries.values()):
                continue  # registered by name: listed under it
            if not table.mismatch(obj) and table.config_of(obj) is not None:
                found.append(table.resolve(f"{module_name}:{attr}"))
    return found
