"""Imputation from a run trained on a table with holes (MIWAE bound): Run.impute and `pyro-vae impute`, observed
cells unchanged, and bad input refused in one line with nothing written."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")

from pyro_vae import load_config, train  # noqa: E402
from pyro_vae.cli import main  # noqa: E402
from pyro_vae.evaluation.imputation import impute, log_weights  # noqa: E402


def mixed_frame(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    frame = pd.DataFrame({"temp": np.round(z + 0.1 * rng.normal(size=n), 3), "flag": (z > 0).astype(int),
                          "visits": rng.poisson(np.exp(0.3 * z + 1)),
                          "colour": np.where(z > 0.5, "red", np.where(z < -0.5, "blue", "green"))}).astype(object)
    holes = rng.random(frame.shape) < 0.25
    holes[holes.all(1), 0] = False
    return frame.mask(holes)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imputation")
    mixed_frame().to_csv(folder / "mixed.csv", index=False)
    config = load_config(None, [
        "data.type=table", f"data.path={folder / 'mixed.csv'}", "data.missing=mask", "data.standardize=true",
        "model.likelihood=columns", "model.latent_dim=2", "model.network.hidden_dims=[8]",
        "train.objective={type: iwae, num_particles: 3}", "train.epochs=2", "train.progress=false",
        "train.eval_samples=2", "seed=0"])
    return train(config, folder / "run")


def test_run_trains_on_the_observed_cells_and_records_the_columns(run):
    assert all(math.isfinite(row["test_elbo"]) for row in run.history)
    assert [c.kind for c in run.config.model.likelihood.columns] == ["continuous", "binary", "count", "categorical"]
    report = run.evaluate(num_samples=3)
    assert {"test_loglik_continuous", "test_loglik_categorical"} <= set(report)


def test_impute_fills_only_the_missing_cells(run):
    frame = mixed_frame(seed=1)
    filled = run.impute(frame, num_samples=20)
    assert list(filled.columns) == list(frame.columns) and list(filled.index) == list(frame.index)
    assert not filled.isna().any().any()
    seen = frame.notna()
    for column in frame.columns:
        kept = filled[column][seen[column]].tolist()
        assert [str(v) if column == "colour" else float(v) for v in kept] == \
            [str(v) if column == "colour" else float(v) for v in frame[column][seen[column]]]
    assert set(filled["colour"]) <= {"blue", "green", "red"} and set(filled["flag"]) <= {0.0, 1.0}
    draws = run.impute(frame, num_samples=20, draws=3)
    assert len(draws) == 3 and all(d[seen].equals(filled[seen]) for d in draws)


def test_the_conditional_mean_is_the_importance_weighted_mean_of_the_decoder_means(run):
    x = torch.tensor([[0.2, float("nan"), 1.0, float("nan")]])
    torch.manual_seed(3)
    log_w, params = log_weights(run.model, x, 50)
    expected = (log_w.softmax(0)[..., None] * run.model.likelihood.mean(params)).sum(0)
    out = impute(run.model, x, num_samples=50, generator_seed=3)
    assert out.shape == (1, 1, 4) and out[0, 0, 0] == 0.2 and out[0, 0, 2] == 1.0
    assert float(out[0, 0, 1]) == float(expected[0, 1] > 0.5)


def test_cli_writes_the_same_header_and_keeps_observed_text(run, tmp_path, capsys):
    source = tmp_path / "holes.csv"
    mixed_frame(seed=2).to_csv(source, index=False)
    assert main(["impute", str(run.path), str(source), "-o", str(tmp_path / "out.csv"), "--num-samples", "10"]) == 0
    before, after = source.read_text().splitlines(), (tmp_path / "out.csv").read_text().splitlines()
    assert before[0] == after[0] and len(before) == len(after)
    for a, b in zip(before[1:], after[1:]):
        assert all(x == y for x, y in zip(a.split(","), b.split(",")) if x) and "" not in b.split(",")
    assert main(["impute", str(run.path), str(source), "-o", str(tmp_path / "m.csv"), "--draws", "2",
                 "--num-samples", "10"]) == 0
    assert (tmp_path / "m_1.csv").is_file() and (tmp_path / "m_2.csv").is_file()


@pytest.mark.parametrize("edit, phrase", [
    (lambda f: f.drop(columns=["visits"]), "lacks 'visits'"),
    (lambda f: f.assign(extra=1), "has 'extra'"),
    (lambda f: f.replace({"colour": {"green": "purple"}}), "'purple' is not a level seen in training"),
    (lambda f: f.assign(flag=f["flag"].where(f["flag"].isna(), 2)), "does not fit the column type binary"),
    (lambda f: pd.concat([f, pd.DataFrame([[None] * 4], columns=f.columns)]), "has every feature cell missing"),
])
def test_bad_impute_input_is_one_line_and_writes_nothing(run, tmp_path, capsys, edit, phrase):
    source = tmp_path / "bad.csv"
    edit(mixed_frame(seed=2)).to_csv(source, index=False)
    assert main(["impute", str(run.path), str(source), "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert phrase in err and err.count("\n") == 1
    assert not (tmp_path / "out.csv").exists()
