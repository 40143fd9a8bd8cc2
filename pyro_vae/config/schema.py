"""Typed config parsing: a nested dict (from YAML) -> dataclasses, with errors that name the key.

Each config is a dataclass. Fields are declared with :func:`opt` (a plain option, with an optional
check and a one-line doc) or :func:`component` (a sub-config chosen by ``type`` from a
:class:`~pyro_vae.registry.Registry`). :func:`from_dict` walks a mapping against the dataclass and
raises :class:`~pyro_vae.errors.ConfigError` naming the dotted key on any unknown key, wrong type,
failed check or unknown component name.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, field
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple, Type, TypeVar, Union

from ..errors import ConfigError
from ..registry import Registry
from .validators import all_positive, fraction, positive  # noqa: F401  (checks, importable from here too)

C = TypeVar("C")


def opt(default: Any, doc: str = "", check: Optional[Callable[[Any], bool]] = None, expected: str = "") -> Any:
    """A config option with a default, a one-line ``doc`` and an optional ``check`` (``expected`` says what passes)."""
    meta = {"doc": doc, "check": check, "expected": expected}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def component(registry: Registry, default: Callable[[], Any], doc: str = "") -> Any:
    """A sub-config chosen by its ``type`` key from ``registry`` (``prior: gmm`` is short for ``prior: {type: gmm}``)."""
    return field(default_factory=default, metadata={"registry": registry, "doc": doc})


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is Union:
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, List):
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as e:
                errors.append(e)
        if type(None) in args and isinstance(value, str) and value.lower() == "none":
            return None  # `clip_norm=none` on the command line
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: got {value!r}; allowed: {', '.join(map(str, allowed))}")
        return value
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float's range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{path}: expected a finite number, got {str(value)[:40]}"
                              + (" (beyond the largest float, about 1.8e308)" if not math.isnan(number) else ""))
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is Any:
        return value
    raise TypeError(f"{path}: unsupported config annotation {tp!r}")  # a bug in a schema, not user input


def _component(registry: Registry, default: Any, value: Any, path: str) -> Any:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{path}: expected a {registry.kind} name or a mapping with `type`; "
            f"allowed types: {', '.join(registry.names())}"
        )
    name = value.get("type", default.type)
    if not isinstance(name, str):
        raise ConfigError(f"{_join(path, 'type')}: expected a string, got {name!r}")
    entry = registry.get(name, key=_join(path, "type"))
    if name == default.type and dataclasses.is_dataclass(default):
        # the field's own default is the starting point (a model may default a prior's options, e.g.
        # gmvae's gmm has form: enumerate); the given keys override it
        value = {**dataclasses.asdict(default), **value}
    return from_dict(entry.config_cls, value, path)


def from_dict(cls: Type[C], data: Any, path: str = "") -> C:
    """Build dataclass ``cls`` from mapping ``data``; any problem is a ConfigError naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{_join(path, str(key))}: unknown key; allowed: {', '.join(fields)}")
    kwargs: Dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        key = _join(path, name)
        if "registry" in f.metadata:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            kwargs[name] = _component(f.metadata["registry"], default, data[name], key)
            continue
        value = _convert(hints[name], data[name], key)
        check = f.metadata.get("check")
        if check is not None and value is not None and not check(value):
            raise ConfigError(f"{key}: got {value!r}; expected {f.metadata.get('expected') or 'a valid value'}")
        kwargs[name] = value
    return cls(**kwargs)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _type_of(value: Any, default: Any) -> Any:
    """The component name in ``value`` (a name, or a mapping with ``type``), else the default's."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and "type" in value:
        return value["type"]
    return getattr(default, "type", None)


def component_at(cls: type, data: Mapping, path: List[str]) -> Optional[Tuple[Registry, Any]]:
    """``(registry, default config)`` of the component field at dotted ``path`` below config class ``cls``,
    following the component types named in ``data`` (or the defaults); None when ``path`` is no component."""
    found: Optional[Tuple[Registry, Any]] = None
    node: Any = data
    for part in path:
        if cls is None or not dataclasses.is_dataclass(cls):
            return None
        f = {f.name: f for f in dataclasses.fields(cls)}.get(part)
        if f is None:
            return None
        node = node.get(part) if isinstance(node, Mapping) else None
        if "registry" in f.metadata:
            registry, default = f.metadata["registry"], _default(f)
            found = registry, default
            name = _type_of(node, default)
            cls = registry.get(name).config_cls if isinstance(name, str) and name in registry else None
        else:
            found = None
            hint = typing.get_type_hints(cls).get(part)
            cls = hint if dataclasses.is_dataclass(hint) else None
    return found


def retype(cls: type, data: Dict[str, Any], path: List[str], new: str) -> List[str]:
    """Change the type of the component at ``path`` (below config class ``cls``, in ``data``) to ``new``, keeping
    the options the new type also has. An option the new type lacks is dropped; a sub-component whose default
    differs between the two types (e.g. the prior of ``vae`` and of ``gmvae``) starts from the new type's
    default. Returns one note per key dropped or reset; the node itself is changed in place."""
    node = data
    for part in path:
        node = node[part]
    place = ".".join(path)
    at = component_at(cls, data, path)
    if at is None or new not in at[0]:  # not a component, or an unknown name (from_dict then names the key)
        node.clear()
        return []
    registry, default = at
    old = _type_of(node, default)
    old_cls = registry.get(old).config_cls if isinstance(old, str) and old in registry else None
    new_cls = registry.get(new).config_cls
    new_fields = {f.name: f for f in dataclasses.fields(new_cls)}
    old_fields = {f.name: f for f in dataclasses.fields(old_cls)} if old_cls is not None else {}
    notes = []
    for key in [k for k in node if k != "type"]:
        if key not in new_fields:
            del node[key]
            notes.append(f"{place}.{key} does not apply to {place}.type {new}; dropped")
            continue
        f = new_fields[key]
        if "registry" in f.metadata and key in old_fields and "registry" in old_fields[key].metadata:
            was, now = _type_of(None, _default(old_fields[key])), _type_of(None, _default(f))
            if was != now:
                del node[key]
                notes.append(f"{place}.{key} starts from {place}.type {new}'s default ({now}), not {old}'s ({was})")
    return notes


def to_dict(config: Any) -> Dict[str, Any]:
    """The plain-dict form of a config (what ``config.yaml`` holds); round-trips through :func:`from_dict`."""

    def type_first(value: Any) -> Any:
        if isinstance(value, dict):
            keys = sorted(value, key=lambda k: k != "type")
            return {k: type_first(value[k]) for k in keys}
        if isinstance(value, list):
            return [type_first(v) for v in value]
        return value

    return type_first(dataclasses.asdict(config))


def describe(config_cls: type) -> List[Tuple[str, str, Any, str]]:
    """``(name, type, default, doc)`` for each option of a config class (used by ``pyro-vae list``)."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        if f.name == "type":
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if dataclasses.is_dataclass(default):
            default = getattr(default, "type", type(default).__name__)
            type_name = f.metadata["registry"].kind if "registry" in f.metadata else "mapping"
        else:
            type_name = _type_name(hints[f.name])
        rows.append((f.name, type_name, default, f.metadata.get("doc", "")))
    return rows
