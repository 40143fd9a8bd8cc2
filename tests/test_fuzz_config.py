"""Fuzzing the config loader (hypothesis): any mapping, override or YAML text gives a RunConfig or a
ConfigError naming the problem — never another exception."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyro_vae  # noqa: F401  (registers every component)
from pyro_vae.config.run import RunConfig, load_config
from pyro_vae.config.schema import from_dict, to_dict
from pyro_vae.errors import ConfigError
from pyro_vae.registry import DATASETS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS
from pyro_vae.train.config import TrainConfig


def _known_names():
    """Every option and component name the schema knows (so the fuzzer reaches deep into valid configs)."""
    names = {"seed", "data", "model", "train", "type"}
    for registry in (DATASETS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS):
        names.update(registry.names())
        for entry in registry.entries():
            names.update(f.name for f in dataclasses.fields(entry.config_cls))
    names.update(f.name for f in dataclasses.fields(TrainConfig))
    return sorted(names)


NAMES = _known_names()
KEYS = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(NAMES),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
CONFIGS = st.dictionaries(st.sampled_from(["seed", "data", "model", "train"]) | KEYS, VALUES, max_size=5)
DOTTED = st.lists(st.sampled_from(NAMES) | st.text(max_size=5), min_size=1, max_size=4).map(".".join)
TEXT_VALUES = st.one_of(st.sampled_from(NAMES), st.text(max_size=12), st.integers().map(str),
                        st.floats().map(str), st.sampled_from(["null", "none", "[64, 32]", "{a: 1}", "1e999",
                                                               "9" * 5000, "true", "-", "[", "!!python/none"]))
OVERRIDES = st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", DOTTED, TEXT_VALUES), st.text(max_size=20)),
                     max_size=5)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _loads_or_names_the_problem(build):
    try:
        config = build()
    except ConfigError as e:
        assert str(e)  # a message, not an empty error
        return
    assert isinstance(config, RunConfig)
    assert from_dict(RunConfig, to_dict(config)) == config  # what loads also round-trips (config.yaml)


@FUZZ
@given(CONFIGS)
def test_any_mapping_is_a_config_or_a_config_error(data):
    _loads_or_names_the_problem(lambda: from_dict(RunConfig, data))


@FUZZ
@given(OVERRIDES)
def test_any_overrides_are_a_config_or_a_config_error(overrides):
    _loads_or_names_the_problem(lambda: load_config(None, overrides))


@FUZZ
@given(st.one_of(st.text(max_size=200), CONFIGS.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 st.sampled_from(["!!python/object/apply:os.system ['echo hi']", "a: [", "- 1\n- 2",
                                  "seed: " + "9" * 5000, "seed: !!float nan", "{", "model: {prior: [1]}"])))
def test_any_yaml_file_is_a_config_or_a_config_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        _loads_or_names_the_problem(lambda: load_config(path))


def test_python_tags_in_yaml_are_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    try:
        load_config(path)
    except ConfigError as e:
        assert "not valid YAML" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a python tag loaded")
    assert not marker.exists()
