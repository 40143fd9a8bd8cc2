"""``data.type: table``: a CSV/TSV file with a header row (read by the standard library's ``csv`` module, so
errors name the line), or a Parquet file (pandas with pyarrow: ``pip install pyro-vae[parquet]``).

Feature columns (named, or every column but the label and covariates), typed per column
(:mod:`pyro_vae.data.columns`: continuous, binary, count or categorical, inferred or set in
``data.column_types``), an optional label column (integers 0..K−1, or class names mapped to 0..K−1 in sorted
order) and optional covariate columns (carried as y). ``data.missing: mask`` keeps empty and NaN feature cells
as NaN (the ``columns`` likelihood scores only the observed cells); ``standardize`` then standardizes the
continuous columns over their observed cells only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config.schema import opt
from ..errors import DataError
from ..registry import DATASETS
from .array import require_path, side_tensors
from .base import FileDataConfig
from .dataset import Dataset
from .make import Source, make_dataset
from .columns import ColumnSpec, check_column_types, column_specs, encode, encode_column


@dataclass
class TableConfig(FileDataConfig):
    type: str = "table"
    delimiter: Optional[str] = opt(None, "field separator; null: tab for .tsv/.tab files, comma otherwise")
    feature_columns: Optional[List[str]] = opt(None, "columns of x; null: every column but label and covariates")
    label_column: Optional[str] = opt(None, "class labels: integers 0..K-1, or names (mapped to 0..K-1 sorted)")
    covariate_columns: List[str] = opt([], "numeric columns carried as the covariates y (B, C)")
    column_types: Any = opt({}, "per feature column: continuous | binary | count | categorical (others inferred)",
                            check_column_types, "a mapping of column names to continuous, binary, count or categorical")
    missing: Literal["error", "mask"] = opt("error", "empty and NaN feature cells: error names the first one; mask "
                                                     "keeps them missing (model.likelihood.type: columns)")


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


def label_column(path: Path, name: str, col: int, rows: list) -> Tuple[np.ndarray, Optional[List[str]]]:
    """Integer labels as they are (no names); other values (class names) mapped to 0..K−1 in sorted order,
    with the names."""
    values = ["" if row[col] is None else str(row[col]).strip() for _, row in rows]
    try:
        return np.array([int(v) for v in values]), None
    except ValueError:
        classes: Dict[str, int] = {c: k for k, c in enumerate(sorted(set(values)))}
        return np.array([classes[v] for v in values]), list(classes)


def read_parquet(path: Path) -> Tuple[List[str], List[Tuple[str, List[Any]]]]:
    """Header and rows of a Parquet file as text cells (None where missing), each row named "row k"."""
    try:
        import pandas as pd

        frame = pd.read_parquet(path, dtype_backend="numpy_nullable")  # integers with holes stay integers
    except ImportError as e:
        raise DataError(f"{path}: reading Parquet needs pyarrow ({e}); pip install 'pyro-vae[parquet]'") from None
    except Exception as e:  # pyarrow's errors for a file that is no Parquet
        raise DataError(f"{path}: cannot read as Parquet ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if frame.shape[0] == 0:
        raise DataError(f"{path}: a header but no data rows")
    return frame_rows(frame)


def frame_rows(frame) -> Tuple[List[str], List[Tuple[str, List[Any]]]]:
    """A pandas DataFrame as (header, rows of text cells named "row k", k from 1); missing cells are None."""
    header = [str(c) for c in frame.columns]
    flags = [c for c in frame.columns if str(frame[c].dtype).lower() in ("bool", "boolean")]
    frame = frame.astype({c: "Int64" for c in flags})  # True/False as 1/0: a binary column
    cells = frame.astype(object).where(frame.notna(), None).values.tolist()
    return header, [(f"row {i + 1}", [None if v is None else str(v) for v in row]) for i, row in enumerate(cells)]


def read_table(path: Path, delimiter: Optional[str]) -> Tuple[List[str], List[Tuple[str, List[Any]]]]:
    """Header and rows ("line k" or "row k", text cells) of a CSV/TSV or Parquet file."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return read_parquet(path)
    delimiter = delimiter or ("\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    if len(delimiter) != 1:
        raise DataError(f"data.delimiter: got {delimiter!r}; expected one character, e.g. ',' or ';' or '\\t'")
    header, rows = read_rows(path, delimiter)
    return header, [(f"line {line}", row) for line, row in rows]


def numeric_cells(path: Path, name: str, cells: Sequence[Any], lines: Sequence[str]) -> np.ndarray:
    """A label or covariate column as float64; any cell that is no finite number is a DataError."""
    return encode_column(ColumnSpec(name, "continuous"), cells, lines, str(path), "error")


@DATASETS.register("table", TableConfig)
class TableData:
    """Rows of a CSV/TSV or Parquet file (header row): typed feature columns as vectors x, optional label and
    covariate columns."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config

    def load(self, seed: int) -> Dataset:
        c = self.config
        path = require_path(c, "a CSV, TSV or Parquet file")
        if c.in_memory is False:
            raise DataError("data.in_memory: false is for .npy files and image folders; a table is read into memory "
                            "(convert a large table to .npy with np.save to stream it)")
        header, rows = read_table(path, c.delimiter)
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
        lines = [line for line, _ in rows]
        cells = [[row[i] for _, row in rows] for i in features]
        specs = column_specs([header[i] for i in features], cells, c.column_types, str(path))
        x = torch.from_numpy(encode(specs, cells, lines, str(path), c.missing))
        labels, names = label_column(path, header[label], label, rows) if label is not None else (None, None)
        cov = np.stack([numeric_cells(path, header[i], [r[i] for _, r in rows], lines) for i in covs], 1) if covs else None
        where = f"{path}" + (f" (label column {c.label_column!r})" if label is not None else "")
        y, num_classes, cov_t = side_tensors(labels, cov, x.shape[0], where)
        keep = torch.tensor([s.kind != "continuous" for s in specs])  # standardize the continuous columns only
        return make_dataset(Source(path.stem, x=x, labels=y, covariates=cov_t, num_classes=num_classes,
                                   standardize=c.standardize, keep=keep, columns=specs, class_names=names,
                                   where=where), c, seed)
