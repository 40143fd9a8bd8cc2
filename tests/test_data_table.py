"""data.type: table: CSV/TSV columns, labels by name, covariates, and bad input naming column and line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae import load_config, train
from pyro_vae.data import load_data
from pyro_vae.errors import DataError


def config(path, *extra):
    return load_config(None, ["data.type=table", f"data.path={path}", *extra])


def write(path, header, rows, sep=","):
    path.write_text(sep.join(header) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def sensors(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", ["low", "high"][i % 2], i % 5]
            for i, (a, b, c) in enumerate(rng.normal(size=(60, 3)))]
    return write(tmp_path / "sensors.csv", ["t1", "t2", "t3", "state", "site"], rows), rows


def test_columns_labels_and_covariates(sensors):
    path, rows = sensors
    data = load_data(config(path, "data.feature_columns=[t1,t3]", "data.label_column=state",
                            "data.covariate_columns=[site]").data, 0)
    assert data.shape == (2,) and data.num_classes == 2 and data.covariate_dim == 1
    assert (data.num_train, data.num_test) == (54, 6)
    # "high" < "low": names map to 0..K-1 in sorted order
    x = torch.cat([data.train_x, data.test_x])
    labels = torch.cat([data.labels("train"), data.labels("test")])
    expected = {(round(float(r[0]), 4), round(float(r[2]), 4)): 0 if r[3] == "high" else 1 for r in rows}
    assert all(expected[(round(float(a), 4), round(float(b), 4))] == int(l) for (a, b), l in zip(x.tolist(), labels))


def test_all_but_label_and_tsv(tmp_path):
    path = write(tmp_path / "t.tsv", ["a", "b", "label"], [[i, 2 * i, i % 2] for i in range(30)], sep="\t")
    data = load_data(config(path, "data.label_column=label").data, 0)
    assert data.shape == (2,) and data.num_classes == 2 and data.test_y.dtype == torch.long


def test_a_table_trains(sensors, tmp_path):
    path, _ = sensors
    run = train(config(path, "data.label_column=state", "data.standardize=true", "train.epochs=1",
                       "train.progress=false", "model.network.hidden_dims=[8]", "model.latent_dim=2",
                       "train.eval_samples=2", "model.likelihood={type: gaussian, learn: per_dim}"), tmp_path / "run")
    assert np.isfinite(run.history[0]["test_elbo"])
    assert (tmp_path / "run" / "reconstruction_scatter.png").is_file()


@pytest.mark.parametrize("rows, extra, phrase", [
    ([[1, 2], [3, "warm"], [5, 6]], [], "column 'b', line 3: 'warm' is not a number"),
    ([[1, 2], [3, 4, 5], [5, 6]], [], "line 3 has 3 fields; expected 2"),
    ([[1, 2], [3, "inf"], [5, 6]], [], "column 'b', line 3: 'inf'; expected a finite number"),
    ([[1, 2], [3, ""], [5, 6]], [], "column 'b', line 3: '' is not a number"),
    ([[1, 2], [3, 4], [5, 6]], ["data.label_column=b"], "one class"),
    ([[1, 2], [3, 4], [5, 6]], ["data.label_column=c"], "no column 'c' (data.label_column); the header has: a, b"),
    ([], [], "a header but no data rows"),
])
def test_bad_tables(tmp_path, rows, extra, phrase):
    if "one class" in phrase:
        rows = [[i, 2] for i in range(10)]
    path = write(tmp_path / "bad.csv", ["a", "b"], rows)
    with pytest.raises(DataError, match=phrase.replace("(", r"\(").replace(")", r"\)")) as e:
        load_data(config(path, *extra).data, 0)
    assert "bad.csv" in str(e.value)
