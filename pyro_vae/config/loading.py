"""Reading YAML config files and applying ``key.sub=value`` command-line overrides."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Union

import yaml

from ..errors import ConfigError
from .schema import component_at, retype

logger = logging.getLogger("pyro_vae")

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
MAX_DEPTH = 32  # nesting levels a config may have (the schema needs 4); deeper is refused, not recursed into
MAX_VALUES = 100_000  # values a config may expand to (YAML aliases repeat a subtree: a "billion laughs" file)
MAX_BYTES = 4 << 20  # the largest config file read


class TooLarge(ConfigError):
    """A YAML document whose aliases expand it beyond :data:`MAX_VALUES` values (refused before constructing it)."""


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with numbers as written in YAML 1.2 and on the command line: ``3e-3`` and ``1e3`` are
    floats (YAML 1.1 wants a dot), and only plain decimals are numbers (``0x10``, ``0o7``, ``1_000`` and
    ``1:30`` stay strings, so a typed option refuses them instead of reading 16, 7, 1000 or 90). A document
    expanding to more than :data:`MAX_VALUES` values (aliases counted each time they are used) is refused
    from its node graph, in time proportional to the file, before anything is built."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        sizes: Dict[int, int] = {}

        def expanded(n: Any) -> int:  # values below n, an alias's subtree counted at each use (memoized per node)
            if id(n) not in sizes:
                children = [v for pair in n.value for v in pair][1::2] if isinstance(n, yaml.MappingNode) else \
                    n.value if isinstance(n, yaml.SequenceNode) else []
                sizes[id(n)] = min(1 + sum(expanded(c) for c in children), MAX_VALUES + 1)
            return sizes[id(n)]

        if node is not None and expanded(node) > MAX_VALUES:
            raise TooLarge(f"expands to more than {MAX_VALUES:,} values (YAML aliases repeating a subtree?); a "
                           "config holds a few hundred")
        return node


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def measure(value: Any) -> "tuple[int, int]":
    """``(depth, values)``: how deeply ``value`` nests lists/dicts and how many values it holds counting repeats
    (a subtree shared by YAML aliases counts each time); the walk stops past :data:`MAX_DEPTH` or
    :data:`MAX_VALUES`, so any value, however large it would expand, is measured in bounded time."""
    deepest, count, stack = 0, 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest, count = max(deepest, depth), count + 1
        if depth > MAX_DEPTH or count > MAX_VALUES:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest, count


def check_size(value: Any, what: str) -> None:
    """A ConfigError naming ``what`` when ``value`` nests deeper than MAX_DEPTH or expands past MAX_VALUES."""
    depth, count = measure(value)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{what}: nested too deeply (more than {MAX_DEPTH} levels)")
    if count > MAX_VALUES:
        raise ConfigError(f"{what}: expands to more than {MAX_VALUES:,} values (YAML aliases repeating a subtree?); "
                          "a config holds a few hundred")


def _yaml_problem(e: Exception) -> str:
    """One line for a YAML error: what is wrong and where (PyYAML's own message spans 4–5 lines)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    if problem is None:
        return " ".join(str(e).split())[:300]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(e, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context and context != problem else "")


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """The mapping in YAML file ``path``; a missing, unreadable or malformed file is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist (expected a YAML file)")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(f"config file {str(path)!r}: {path.stat().st_size:,} bytes; a config file is at most "
                          f"{MAX_BYTES:,} bytes")
    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=ConfigLoader)
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    except TooLarge as e:
        raise ConfigError(f"config file {str(path)!r}: {e}") from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: e.g. an integer of > 4300 digits
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {_yaml_problem(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping at the top level, got {type(data).__name__}")
    check_size(data, f"config file {str(path)!r}")
    return data


def parse_value(text: str) -> Any:
    """A command-line value as YAML (``1e-3`` is a float, ``[64, 32]`` a list, ``null`` is null); an empty
    value is the empty string (``data.root=`` is not ``null``: that is written ``data.root=null``)."""
    if not text.strip():
        return text
    try:
        if _FLOAT.match(text.strip()):
            return int(text) if _INT.match(text.strip()) else float(text)  # int(): exact, no overflow
        value = yaml.load(text, Loader=ConfigLoader)
    except RecursionError:
        raise ConfigError(f"value {text[:40]!r}...: nested too deeply (more than {MAX_DEPTH} levels)") from None
    except TooLarge as e:
        raise ConfigError(f"value {text[:40]!r}...: {e}") from None
    except (yaml.YAMLError, ValueError):  # ValueError: an integer beyond Python's 4300-digit limit
        return text
    check_size(value, f"value {text[:40]!r}...")
    return value


def apply_overrides(data: Dict[str, Any], overrides: Iterable[str], schema: type) -> Dict[str, Any]:
    """A copy of ``data`` with each ``a.b.c=value`` set.

    Changing a component's ``type`` (``model.type=baseline``, or the short form ``model.prior=gmm``) keeps the
    options the new type also has and drops the others, with a one-line note on stderr naming each key
    dropped (see :func:`~pyro_vae.config.schema.retype`); ``schema`` is the config class of ``data`` (for a
    run config, :class:`~pyro_vae.config.run.RunConfig`).
    """
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item[:80]!r}: expected key.sub=value, e.g. train.epochs=5")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"override {key[:40]!r}...: {len(parts)} levels of keys (a config has at most "
                              f"{MAX_DEPTH})")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and component_at(schema, data, parts[:depth + 1]):  # `prior: gmm` -> {type: gmm}
                child = {"type": child}
            elif child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth + 1])} is not a mapping (it holds "
                                  f"{child!r}); a key below it cannot be set")
            node[part] = child
            node = child
        value = parse_value(text)
        last = parts[-1]
        if isinstance(value, str) and isinstance(node.get(last), dict) and component_at(schema, data, parts):
            node, last, parts = node[last], "type", [*parts, "type"]  # `prior: gmm` is short for `prior.type: gmm`
        if last == "type" and isinstance(value, str) and node.get("type") != value:
            for note in retype(schema, data, parts[:-1], value):
                logger.warning("pyro-vae: note: %s", note)
        elif last == "type" and node.get("type") != value:
            node.clear()
        node[last] = value
    return data


def load_config_dict(path: Optional[Union[str, Path]], overrides: Iterable[str], schema: type) -> Dict[str, Any]:
    """The raw mapping: file ``path`` (None: empty, for the defaults) with ``overrides`` applied against ``schema``."""
    data = read_yaml(path) if path is not None else {}
    return apply_overrides(data, overrides, schema)
