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
MAX_DEPTH = 32  # nesting levels a config may have (the schema needs 4); deeper is refused, not recursed into


def nesting_depth(value: Any) -> int:
    """How deeply ``value`` nests lists/dicts (iteratively: any depth is measured without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


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
    try:
        data = yaml.safe_load(path.read_text())
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: e.g. an integer of > 4300 digits
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {_yaml_problem(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping at the top level, got {type(data).__name__}")
    if nesting_depth(data) > MAX_DEPTH:
        raise ConfigError(f"config file {str(path)!r}: nested too deeply (more than {MAX_DEPTH} levels)")
    return data


def parse_value(text: str) -> Any:
    """A command-line value as YAML (``1e-3`` is a float, ``[64, 32]`` a list, ``null`` is null); an empty
    value is the empty string (``data.root=`` is not ``null``: that is written ``data.root=null``)."""
    if not text.strip():
        return text
    try:
        if _FLOAT.match(text.strip()):
            return int(text) if re.match(r"^[+-]?\d+$", text.strip()) else float(text)  # int(): exact, no overflow
        value = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"value {text[:40]!r}...: nested too deeply (more than {MAX_DEPTH} levels)") from None
    except (yaml.YAMLError, ValueError):  # ValueError: an integer beyond Python's 4300-digit limit
        return text
    if nesting_depth(value) > MAX_DEPTH:
        raise ConfigError(f"value {text[:40]!r}...: nested too deeply (more than {MAX_DEPTH} levels)")
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
            if isinstance(child, str):  # shorthand `prior: gmm` -> {type: gmm}
                child = {"type": child}
            elif child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth + 1])} is not a mapping")
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
