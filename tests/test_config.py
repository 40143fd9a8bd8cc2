"""Config parsing: defaults, YAML files, overrides, and errors that name the key."""

import logging
from pathlib import Path

import pytest

from pyro_vae import ConfigError, RunConfig, load_config, save_config
from pyro_vae.config import apply_overrides, from_dict, to_dict

REPO = Path(__file__).resolve().parents[1]


def test_packaged_default_equals_digits_yaml():
    assert load_config(REPO / "configs" / "digits_vae.yaml") == load_config(None) == RunConfig()


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    assert isinstance(load_config(path), RunConfig)


def test_round_trip_through_yaml(tmp_path):
    config = load_config(None, ["model.prior=normal", "train.lr=3e-4", "model.network.hidden_dims=[64, 32]"])
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config
    assert config.train.lr == pytest.approx(3e-4)
    assert config.model.network.hidden_dims == [64, 32]


def test_type_override_resets_component_options():
    base = {"model": {"likelihood": {"type": "gaussian", "sigma": 0.5}}}
    assert apply_overrides(base, ["model.likelihood.type=bernoulli"], RunConfig)["model"]["likelihood"] == {"type": "bernoulli"}
    assert base["model"]["likelihood"]["sigma"] == 0.5  # the input is not mutated


def test_shorthand_component_name():
    assert load_config(None, ["model.likelihood=gaussian"]).model.likelihood.sigma == pytest.approx(0.1)


@pytest.mark.parametrize("overrides, key, detail", [
    (["train.epoch=3"], "train.epoch", "allowed: epochs"),
    (["train.epochs=three"], "train.epochs", "integer"),
    (["train.epochs=0"], "train.epochs", ">= 1"),
    (["train.lr=-1"], "train.lr", "> 0"),
    (["model.prior=wishart"], "model.prior.type", "unknown prior 'wishart'; allowed:"),
    (["model.likelihood=gaussian", "model.likelihood.learn=sometimes"], "model.likelihood.learn", "allowed: fixed"),
    (["model.likelihood.learn=fixed"], "model.likelihood.learn", "unknown key; allowed: type"),
    (["data.type=cifar"], "data.type", "allowed: array, digits"),
    (["data.test_fraction=1.5"], "data.test_fraction", "(0, 1)"),
    (["train.progress=maybe"], "train.progress", "true or false"),
    (["model.network.hidden_dims=7"], "model.network.hidden_dims", "list"),
])
def test_errors_name_the_key(overrides, key, detail):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert key in str(err.value) and detail in str(err.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(scalar)


def test_malformed_override():
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["train.epochs"])


def test_to_dict_puts_type_first():
    d = to_dict(RunConfig())
    assert list(d["data"])[0] == "type" and list(d["train"]["objective"])[0] == "type"
    assert from_dict(RunConfig, d) == RunConfig()


def test_partial_component_keeps_the_models_own_defaults():
    """gmvae defaults its prior to gmm with form: enumerate; setting one prior option keeps that default,
    naming another prior type starts from that type's defaults."""
    config = load_config(None, ["model.type=gmvae", "model.prior.num_components=3"])
    prior = config.model.prior
    assert (prior.type, prior.form, prior.num_components) == ("gmm", "enumerate", 3)
    assert load_config(None, ["model.type=vae", "model.prior.type=gmm"]).model.prior.form == "marginal"
    assert load_config(None, ["model.type=gmvae", "model.prior=normal"]).model.prior.type == "normal"


def test_type_override_keeps_what_still_applies(caplog):
    """model.type=baseline on the CVAE config keeps condition, visible, network and likelihood; the keys the
    baseline does not have are dropped, each with a one-line note naming it."""
    cvae = load_config(REPO / "configs" / "digits_cvae.yaml", ["model.visible=1", "model.network.hidden_dims=[64]",
                                                               "model.likelihood=continuous_bernoulli"])
    with caplog.at_level(logging.WARNING, logger="pyro_vae"):
        base = load_config(REPO / "configs" / "digits_cvae.yaml",
                           ["model.visible=1", "model.network.hidden_dims=[64]", "model.likelihood=continuous_bernoulli",
                            "model.type=baseline"]).model
    assert base.type == "baseline"
    assert (base.condition, base.visible, base.network, base.likelihood) == (
        cvae.model.condition, cvae.model.visible, cvae.model.network, cvae.model.likelihood)
    assert base.condition == "label"  # the file's, not the baseline's default (quadrants)
    notes = [r.getMessage() for r in caplog.records]
    assert notes == ["pyro-vae: note: model.latent_dim does not apply to model.type baseline; dropped",
                     "pyro-vae: note: model.prior does not apply to model.type baseline; dropped"]


def test_type_override_takes_the_new_types_own_component_defaults(caplog):
    """A sub-component whose default is part of what the type means (the gmvae's enumerated gmm, the sparse
    autoencoder's Laplace prior) starts from the new type's default, with a note; the rest is kept."""
    with caplog.at_level(logging.WARNING, logger="pyro_vae"):
        model = load_config(REPO / "configs" / "digits_vae.yaml", ["model.latent_dim=3", "model.type=gmvae"]).model
    assert (model.latent_dim, model.prior.type, model.prior.form) == (3, "gmm", "enumerate")
    assert "model.prior starts from model.type gmvae's default (gmm), not vae's (normal)" in caplog.text
    sparse = load_config(None, ["model.network.hidden_dims=[32]", "model.type=sparse"]).model
    assert (sparse.network.hidden_dims, sparse.prior.type) == ([32], "laplace")
    assert load_config(None, ["model.type=cvae"]).model.prior.type == "conditional"


def test_short_form_type_override_keeps_shared_options():
    config = load_config(None, ["model.network.activation=tanh", "model.network.hidden_dims=[16]",
                                "model.network=conv"])
    assert (config.model.network.type, config.model.network.activation) == ("conv", "tanh")


def test_the_validators_say_what_they_accept():
    from pyro_vae.config import validators as v

    assert v.non_negative(0) and v.non_negative(2.5) and not v.non_negative(-1) and not v.non_negative(True)
    assert v.positive(1) and not v.positive(0) and not v.positive(None)
    assert v.fraction(0.5) and not v.fraction(1.0) and v.fraction_or_one(1.0) and not v.fraction_or_one(0)
    assert v.all_positive([1, 2]) and not v.all_positive([1, 0])
    assert v.at_least(2)(2) and not v.at_least(2)(1)
    assert v.one_of(1, 2, 3)(3) and not v.one_of(1, 2, 3)(4)
