"""``data.type: table``: a CSV/TSV file with a header row, read by the standard library's ``csv`` module.

Feature columns (named, or every column but the label and covariates), an optional label column (integers
0..K−1, or class names mapped to 0..K−1 in sorted order) and optional covariate columns (carried as y).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..config.schema import opt
from ..errors import DataError
from ..registry import DATASETS
from .array import FileDataConfig, from_arrays, require_path
from .base import Dataset

FLOAT32_MAX = float(np.finfo(np.float32).max)  # the data is float32: a larger value would become inf


@dataclass
class TableConfig(FileDataConfig):
    type: str = "table"
    delimiter: Optional[str] = opt(None, "field separator; null: tab for .tsv/.tab files, comma otherwise")
    feature_columns: Optional[List[str]] = opt(None, "columns of x; null: every column but label and covariates")
    label_column: Optional[str] = opt(None, "class labels: integers 0..K-1, or names (mapped to 0..K-1 sorted)")
    covariate_columns: List[str] = opt([], "numeric columns carried as the covariates y (B, C)")


def read_rows(path: Path, delimiter: str) -> tuple:
    """Header and rows of a delimited text file; ragged rows are a DataError naming the line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a byte-order mark is no part of a name
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file (expected a header row and data rows)")
            header = [h.strip() for h in header]
            rows = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(f"{path}: line {reader.line_num} has {len(row)} fields; expected {len(header)} "
                                    "(as in the header)")
                rows.append((reader.line_num, row))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as delimited text ({e})") from None
    if not rows:
        raise DataError(f"{path}: a header but no data rows")
    return header, rows


def numeric_column(path: Path, name: str, col: int, rows: list) -> np.ndarray:
    """Column ``col`` as float64; a non-numeric, empty, NaN or inf cell is a DataError naming column and line."""
    out = np.empty(len(rows))
    for i, (line, row) in enumerate(rows):
        text = row[col].strip()
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"{path}: column {name!r}, line {line}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{path}: column {name!r}, line {line}: {text!r}; expected a finite number")
        if abs(value) > FLOAT32_MAX:
            raise DataError(f"{path}: column {name!r}, line {line}: {text!r} overflows float32 (largest "
                            f"{FLOAT32_MAX:.4g}); expected a value in range (rescale the column)")
        out[i] = value
    return out


def label_column(path: Path, name: str, col: int, rows: list) -> np.ndarray:
    """Integer labels as they are; other values (class names) mapped to 0..K−1 in sorted order."""
    values = [row[col].strip() for _, row in rows]
    try:
        return np.array([int(v) for v in values])
    except ValueError:
        classes: Dict[str, int] = {c: k for k, c in enumerate(sorted(set(values)))}
        return np.array([classes[v] for v in values])


@DATASETS.register("table", TableConfig)
class TableData:
    """Rows of a CSV/TSV file (header row): feature columns as vectors x, optional label and covariate columns."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        c = self.config
        path = require_path(c, "a CSV or TSV file")
        if c.in_memory is False:
            raise DataError("data.in_memory: false is for .npy files and image folders; a table is read into memory "
                            "(convert a large table to .npy with np.save to stream it)")
        delimiter = c.delimiter or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
        if len(delimiter) != 1:
            raise DataError(f"data.delimiter: got {delimiter!r}; expected one character, e.g. ',' or ';' or '\\t'")
        header, rows = read_rows(path, delimiter)
        columns = {name: i for i, name in enumerate(header)}

        def find(name: str, option: str) -> int:
            if name not in columns:
                raise DataError(f"{path}: no column {name!r} (data.{option}); the header has: {', '.join(header)}")
            return columns[name]

        label = find(c.label_column, "label_column") if c.label_column is not None else None
        covs = [find(n, "covariate_columns") for n in c.covariate_columns]
        if c.feature_columns is not None:
            features = [find(n, "feature_columns") for n in c.feature_columns]
        else:
            features = [i for i in range(len(header)) if i != label and i not in covs]
        if not features:
            raise DataError(f"{path}: no feature columns left (header: {', '.join(header)})")
        x = np.stack([numeric_column(path, header[i], i, rows) for i in features], 1).astype(np.float32)
        labels = label_column(path, header[label], label, rows) if label is not None else None
        cov = np.stack([numeric_column(path, header[i], i, rows) for i in covs], 1) if covs else None
        where = f"{path}" + (f" (label column {c.label_column!r})" if label is not None else "")
        return from_arrays(path.stem, x, labels, cov, c, seed, where=where)
