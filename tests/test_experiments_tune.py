"""``pyro-vae tune``: Optuna trials scored on a validation slice of the training split, best config as YAML."""

from __future__ import annotations

import pytest
import torch

from pyro_vae.cli import main
from pyro_vae.config.run import load_config
from pyro_vae.data import load_data

optuna = pytest.importorskip("optuna")

TINY = ["train.epochs=2", "model.network.hidden_dims=[8]", "train.num_images=4", "train.eval_samples=2",
        "data.limit=300"]
SPACE = """\
train.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
model.latent_dim: {type: int, low: 2, high: 3}
model.prior: {type: categorical, choices: [normal, laplace]}
"""


def test_validation_slice_is_cut_from_the_training_split():
    plain = load_data(load_config(None, ["data.binarize=none"]).data, 0)
    held = load_data(load_config(None, ["data.binarize=none", "data.validation=0.25"]).data, 0)
    n = held.test_x.shape[0]
    assert n == round(0.25 * plain.train_x.shape[0])
    assert torch.equal(held.test_x, plain.train_x[:n]) and torch.equal(held.train_x, plain.train_x[n:])


def test_tune_writes_a_study_and_a_trainable_best_config(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "tune"
    assert main(["tune", "--space", str(space), "--trials", "2", "--out", str(out), *TINY]) == 0
    assert "best trial" in capsys.readouterr().out
    study = optuna.load_study(study_name="pyro-vae", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 2
    assert all(sorted(t.intermediate_values) == [1, 2] for t in study.trials)  # per-epoch validation ELBO (pruning)
    for trial in study.trials:  # every trial scored on the validation slice
        assert load_config(out / "pyro-vae" / f"trial-{trial.number}" / "config.yaml").data.validation == 0.1
    best = load_config(out / "best.yaml")  # `pyro-vae train best.yaml` takes it as it is
    assert best.data.validation is None and best.model.latent_dim == study.best_params["model.latent_dim"]


@pytest.mark.parametrize("space, args, words", [
    ("train.lr: {type: float, low: 1}", [], "train.lr: float needs low, high (missing high)"),
    ("train.lr: {type: normal}", [], "expected a mapping with type float, int or categorical"),
    ("model.latnt_dim: {type: int, low: 2, high: 3}", [], "model.latnt_dim: unknown key"),
    ("train.lr: {type: float, low: 0, high: 1, log: true}", [], "log: true needs low > 0"),
    (SPACE, ["--storage", "nodb://nowhere"], "--storage 'nodb://nowhere': cannot open the study"),
])
def test_bad_spaces_and_storage_are_one_line(tmp_path, capsys, space, args, words):
    (tmp_path / "space.yaml").write_text(space)
    assert main(["tune", "--space", str(tmp_path / "space.yaml"), "--out", str(tmp_path / "t"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_optuna_missing_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    (tmp_path / "space.yaml").write_text(SPACE)
    assert main(["tune", "--space", str(tmp_path / "space.yaml"), "--out", str(tmp_path / "t")]) == 2
    assert "tune: needs the optuna package (pip install 'pyro-vae[tune]')" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
