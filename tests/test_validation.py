"""Cross-section config rules (pyro_vae.validation.validate): raised before any data is read."""

from __future__ import annotations

import pytest

from conftest import tiny_overrides
from pyro_vae import run as run_module
from pyro_vae.config.run import load_config
from pyro_vae.errors import ConfigError
from pyro_vae.run import train
from pyro_vae.validation import validate


@pytest.mark.parametrize("overrides, match", [
    (["model.type=gmvae", "train.objective.type=elbo"], r"train.objective.type: 'elbo' cannot train .* 'y'"),
    (["model.prior=gmm", "model.prior.form=enumerate", "train.objective.type=iwae"], "train.objective.type: 'iwae'"),
    (["model.type=gmvae", "model.prior=normal", "train.objective.type=enum"], "model.prior: gmvae needs type 'gmm'"),
    (["model.type=vae", "model.prior=conditional"], "model.prior.learn: a learned p"),
    (["model.type=contractive", "model.jacobian=closed_form", "model.network.hidden_dims=[8, 8]"],
     "model.jacobian: closed_form needs"),
    (["model.type=contractive", "model.jacobian=closed_form", "model.network=conv"], "model.jacobian: closed_form"),
    (["model.type=cvae", "model.prior=vamp"], "model.prior.type: 'vamp' mixes the encoder's q"),
])
def test_rules_name_the_keys(overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate(load_config(None, overrides))


@pytest.mark.parametrize("overrides", [
    [], ["model.type=gmvae", "train.objective.type=enum"], ["model.prior=gmm", "model.prior.form=enumerate",
                                                              "train.objective.type=enum"],
    ["model.type=cvae"], ["model.type=vae", "model.prior=conditional", "model.prior.learn=false"],
    ["model.type=contractive", "model.jacobian=closed_form", "model.network.hidden_dims=[8]"], ["model.type=baseline"],
])
def test_consistent_configs_pass(overrides):
    validate(load_config(None, overrides))


def test_checked_before_any_data_is_read(tmp_path, monkeypatch):
    """A wrong objective on an MNIST config whose files are missing: the config error, not a data error."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the config was validated")

    monkeypatch.setattr(run_module, "load_data", no_data)
    config = load_config(None, ["data.type=mnist", f"data.root={tmp_path / 'missing'}", "model.type=gmvae",
                                "train.objective.type=meanfield"])
    with pytest.raises(ConfigError, match="train.objective.type: 'meanfield'"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_valid_config_trains(tmp_path):
    run = train(load_config(None, tiny_overrides("model.type=gmvae", "model.prior.num_components=3",
                                                 "train.objective.type=enum", "train.epochs=1")), tmp_path / "run")
    assert (run.path / "model.pt").is_file()
