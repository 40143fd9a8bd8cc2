"""A sweep's grid: ``key=a,b,c`` overrides, their cross product, one named cell (run folder) per combination.

A value list splits on its top-level commas only: ``model.network.hidden_dims=[256,128],[64]`` is two values
and ``x={a: 1, b: 2}`` one. Every cell's config is parsed and checked before any run starts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..config.loading import parse_value
from ..config.run import RunConfig, load_config
from ..errors import ConfigError

PathLike = Union[str, Path]
_OPEN, _CLOSE = "[{(", "]})"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
MAX_NAME = 120  # characters of a cell's folder name before it is shortened


def split_values(text: str) -> List[str]:
    """``"1,2,[3,4]"`` -> ``["1", "2", "[3,4]"]``: commas inside brackets, braces or quotes do not split."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_axes(overrides: Sequence[str], keep: Sequence[str] = ()) -> Tuple[Dict[str, List[str]], List[str]]:
    """``(axes, plain)``: each ``key=a,b`` with two or more values (or any value of a key in ``keep``) is an axis
    ``key -> [a, b]``; the others are plain overrides applied to every cell. An empty value in a list
    (``lr=1e-3,``) is a ConfigError."""
    axes: Dict[str, List[str]] = {}
    plain: List[str] = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item[:80]!r}: expected key=value or key=a,b,c, e.g. train.lr=1e-3,1e-2")
        values = split_values(text)
        if len(values) == 1 and key not in keep:
            plain.append(item)
            continue
        if any(v == "" for v in values):
            raise ConfigError(f"{key}: empty value in the list {text!r}; expected comma-separated values, e.g. "
                              f"{key}=a,b")
        if key in axes:
            raise ConfigError(f"{key}: swept twice; give its values in one list")
        if len(set(values)) < len(values):
            raise ConfigError(f"{key}: a value repeats in {text!r}; give each value once")
        axes[key] = values
    return axes, plain


def _label(text: str) -> str:
    """A value as a folder-name part: ``[256, 128]`` -> ``256-128``, ``1e-3`` -> ``1e-3``."""
    return _UNSAFE.sub("-", text).strip("-.") or "empty"


@dataclass
class Cell:
    """One combination of the grid: its folder name, its swept values and its full override list."""

    name: str
    values: Dict[str, str]  # swept key -> value text, as given
    overrides: List[str]
    config: Optional[RunConfig] = None


def cells(axes: Dict[str, List[str]], plain: Sequence[str]) -> List[Cell]:
    """The cross product of ``axes`` (the first key varies slowest), each cell with a filesystem-safe, unique name
    ``key=value,key=value`` (just ``run`` when nothing is swept)."""
    keys = list(axes)
    out: List[Cell] = []
    taken: Dict[str, int] = {}
    for combo in itertools.product(*(axes[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = ",".join(f"{k}={_label(v)}" for k, v in values.items()) or "run"
        if len(name) > MAX_NAME:
            name = name[:MAX_NAME].rstrip(",=")
        if name in taken:  # two values that label alike (e.g. `a b` and `a-b`): number the later one
            taken[name] += 1
            name = f"{name}~{taken[name]}"
        else:
            taken[name] = 1
        out.append(Cell(name, values, [*plain, *(f"{k}={v}" for k, v in values.items())]))
    return out


def build(config: Optional[PathLike], overrides: Sequence[str], keep: Sequence[str] = ()) -> List[Cell]:
    """The grid's cells (``keep``: keys that are axes even with one value), each with its parsed and checked
    RunConfig; the first bad one is a ConfigError naming the key and, for a swept value, the value (before any
    run starts)."""
    from ..config.loading import read_yaml
    from ..validation import validate

    if config is not None:
        read_yaml(config)  # a missing or malformed file is named once, not per cell
    axes, plain = parse_axes(overrides, keep)
    for key, values in axes.items():
        for value in values:
            parse_value(value)  # too deeply nested values fail here, naming the value
    grid = cells(axes, plain)
    for cell in grid:
        try:
            cell.config = load_config(config, cell.overrides)
            validate(cell.config)
        except ConfigError as e:
            where = ", ".join(f"{k}={v}" for k, v in cell.values.items())
            raise ConfigError(f"{e}" + (f" (in the grid cell {where})" if where else "")) from None
    return grid
