"""Table column types: inference, overrides, missing cells, Parquet, and bad cells naming line, column and value."""

from __future__ import annotations

import pytest
import torch

from pyro_vae import load_config
from pyro_vae.data import load_data
from pyro_vae.data.columns import infer_kind
from pyro_vae.errors import DataError

HEADER = "temp,flag,visits,colour\n"
ROWS = ["1.5,1,3,red", "2.5,0,0,blue", ",1,2,red", "0.5,,7,green", "3.5,0,1,", "1.0,1,4,blue"] * 3


def table(tmp_path, rows=ROWS, header=HEADER, name="t.csv"):
    path = tmp_path / name
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def load(path, *extra):
    return load_data(load_config(None, ["data.type=table", f"data.path={path}", "data.test_fraction=0.2",
                                        *extra]).data, 0)


@pytest.mark.parametrize("values, kind", [
    (["1.5", "2"], "continuous"), (["0", "1", "1"], "binary"), (["0", "3", "12"], "count"),
    (["-1", "2"], "continuous"), (["red", "blue"], "categorical"), (["1", "2", "warm"], "continuous"),
])
def test_kinds_are_inferred_from_the_text(values, kind):
    assert infer_kind(values) == kind


def test_mask_keeps_missing_cells_and_standardizes_continuous_columns_only(tmp_path):
    data = load(table(tmp_path), "data.missing=mask", "data.standardize=true")
    assert [(c.name, c.kind) for c in data.columns] == [("temp", "continuous"), ("flag", "binary"),
                                                       ("visits", "count"), ("colour", "categorical")]
    assert data.columns[3].levels == ["blue", "green", "red"]
    x = torch.cat([data.train_x, data.test_x])
    assert int(torch.isnan(x).sum()) == 9  # three holes, three times
    train = data.train_x[:, 0][~torch.isnan(data.train_x[:, 0])]
    assert abs(float(train.mean())) < 1e-5 and abs(float(train.std(unbiased=False)) - 1) < 1e-4
    assert data.standardizer.mean[1:].abs().max() == 0 and (data.standardizer.std[1:] == 1).all()
    codes = x[:, 3][~torch.isnan(x[:, 3])]
    assert set(codes.tolist()) == {0.0, 1.0, 2.0}


def test_declared_type_overrides_the_inference(tmp_path):
    data = load(table(tmp_path), "data.missing=mask", "data.column_types={visits: categorical}")
    assert data.columns[2].kind == "categorical" and data.columns[2].levels == ["0", "1", "2", "3", "4", "7"]


def test_parquet_reads_like_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(table(tmp_path), dtype_backend="numpy_nullable")  # integer columns with holes: Int64
    frame["flag"] = frame["flag"].astype("boolean")  # a Parquet boolean column reads as binary 0/1
    frame.to_parquet(tmp_path / "t.parquet")
    a, b = load(tmp_path / "t.csv", "data.missing=mask"), load(tmp_path / "t.parquet", "data.missing=mask")
    assert [c.kind for c in b.columns] == [c.kind for c in a.columns] == ["continuous", "binary", "count",
                                                                         "categorical"]
    assert b.columns[3].levels == a.columns[3].levels
    assert torch.equal(torch.isnan(a.train_x), torch.isnan(b.train_x))


@pytest.mark.parametrize("rows, extra, phrase", [
    (ROWS, [], "column 'temp', line 4: '' is not a number (a missing cell; set data.missing: mask"),
    (ROWS, ["data.missing=mask", "data.column_types={visits: binary}"],
     "column 'visits', line 2: '3' does not fit the column type binary"),
    (["1,", "2,", "3,"], ["data.missing=mask"], "column 'b' has no observed cell"),
    (["1,2", ",", "3,4"], ["data.missing=mask"], "line 3 has every feature cell missing"),
    (ROWS, ["data.missing=mask", "data.column_types={nope: count}"], "data.column_types: no feature column 'nope'"),
])
def test_bad_cells_name_line_column_and_value(tmp_path, rows, extra, phrase):
    header = HEADER if rows is ROWS else "a,b\n"
    with pytest.raises(DataError) as e:
        load(table(tmp_path, rows, header), *extra)
    assert phrase in str(e.value) and "\n" not in str(e.value)
