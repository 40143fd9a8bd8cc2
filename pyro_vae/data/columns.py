"""Column types of a table: inferred from the values, overridable per column, and the cells encoded as numbers.

Kinds (``data.column_types: {column: kind}`` overrides the inference):

* ``continuous`` — real numbers (a value written with a decimal point or exponent);
* ``binary`` — the values 0 and 1;
* ``count`` — non-negative integers (written without a decimal point);
* ``categorical`` — anything else (strings), coded 0..L−1 in the sorted order of the L levels seen.

A cell is missing when it is empty or reads ``NaN``/``nan``/``NA``; it is encoded as NaN (``data.missing: mask``
keeps it, ``error`` refuses it naming line and column).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Literal, Optional, Sequence

import numpy as np

from ..config.schema import opt
from ..errors import DataError

KINDS = ("continuous", "binary", "count", "categorical")
Kind = Literal["continuous", "binary", "count", "categorical"]
MISSING_TEXT = ("", "nan", "NaN", "NAN", "NA", "N/A")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass
class ColumnSpec:
    """One feature column: its name, kind and (categorical) level names in code order."""

    name: str = opt("", "the column's name in the table's header")
    kind: Kind = opt("continuous", "continuous | binary | count | categorical")
    levels: List[str] = opt([], "categorical: the level names; code k is levels[k]")


def check_column_types(value) -> bool:
    """``data.column_types`` is a mapping of column names to kinds."""
    return isinstance(value, dict) and all(isinstance(k, str) and v in KINDS for k, v in value.items())


def is_missing(text: Optional[str]) -> bool:
    return text is None or (isinstance(text, float) and math.isnan(text)) or str(text).strip() in MISSING_TEXT


FLOAT32_MAX = float(np.finfo(np.float32).max)  # the data is float32: a larger value would become inf


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def infer_kind(values: Sequence[str]) -> Kind:
    """The kind of a column from its observed (non-missing) cells' text."""
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        # mostly numbers with a few words is a typo in a numeric column (an error later), not categories
        return "continuous" if 2 * sum(n is not None for n in numbers) > len(numbers) else "categorical"
    if all(_INTEGER.match(v) for v in values):
        return "binary" if set(numbers) <= {0.0, 1.0} else "count" if min(numbers) >= 0 else "continuous"
    return "continuous"


def encode_column(spec: ColumnSpec, cells: Sequence[str], lines: Sequence[str], where: str,
                  missing: str) -> np.ndarray:
    """The column's cells as float64 (categorical: level codes; missing: NaN); a cell that does not fit the kind,
    or a missing cell with ``missing == "error"``, is a DataError naming line, column and value."""
    out = np.full(len(cells), np.nan)
    codes = {level: k for k, level in enumerate(spec.levels)}
    for i, (text, line) in enumerate(zip(cells, lines)):
        shown = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text).strip()
        if is_missing(text):
            if missing == "error":
                raise DataError(f"{where}: column {spec.name!r}, {line}: {shown!r} is not a number (a missing "
                                "cell; set data.missing: mask to train on the observed cells)")
            continue
        text = shown
        if spec.kind == "categorical":
            if text not in codes:
                raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r} is not a level seen in "
                                f"training ({', '.join(spec.levels[:8])}{', ...' if len(spec.levels) > 8 else ''})")
            out[i] = codes[text]
            continue
        value = _number(text)
        if value is None:
            raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r} is not a number")
        if not math.isfinite(value):
            raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r}; expected a finite number")
        if abs(value) > FLOAT32_MAX:
            raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r} overflows float32 (largest "
                            f"{FLOAT32_MAX:.4g}); expected a value in range (rescale the column)")
        if spec.kind == "binary" and value not in (0.0, 1.0):
            raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r} does not fit the column type "
                            "binary; expected 0 or 1")
        if spec.kind == "count" and (value < 0 or value != round(value)):
            raise DataError(f"{where}: column {spec.name!r}, {line}: {text!r} does not fit the column type "
                            "count; expected a non-negative integer")
        out[i] = value
    return out


def column_specs(names: Sequence[str], columns: Sequence[Sequence[str]], declared: Dict[str, str],
                 where: str) -> List[ColumnSpec]:
    """The spec of each feature column: its declared kind, else the inferred one; categorical levels sorted."""
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise DataError(f"data.column_types: no feature column {unknown[0]!r} in {where}; the features are: "
                        f"{', '.join(names)}")
    specs = []
    for name, cells in zip(names, columns):
        seen = [str(c).strip() for c in cells if not is_missing(c)]
        if not seen:
            raise DataError(f"{where}: column {name!r} has no observed cell (every cell is missing); drop it "
                            "(data.feature_columns)")
        kind = declared.get(name) or infer_kind(seen)
        levels = sorted(set(seen)) if kind == "categorical" else []
        specs.append(ColumnSpec(name, kind, levels))
    return specs


def encode(specs: Sequence[ColumnSpec], columns: Sequence[Sequence[str]], lines: Sequence[str], where: str,
           missing: str) -> np.ndarray:
    """The ``(N, D)`` float32 matrix of the feature cells (NaN where missing); a row with every cell missing is a
    DataError naming its line."""
    x = np.stack([encode_column(s, c, lines, where, missing) for s, c in zip(specs, columns)], 1)
    empty = np.isnan(x).all(1)
    if empty.any():
        raise DataError(f"{where}: {lines[int(np.argmax(empty))]} has every feature cell missing "
                        f"({int(empty.sum())} such rows); drop those rows")
    return x.astype(np.float32)


def decode_cell(spec: ColumnSpec, value: float) -> str:
    """The text of an imputed cell: a level name, an integer, or a real number."""
    if spec.kind == "categorical":
        return spec.levels[int(value)]
    if spec.kind in ("binary", "count"):
        return str(int(round(value)))
    return f"{value:.6g}"
