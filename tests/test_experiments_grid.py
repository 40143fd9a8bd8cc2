"""Sweep grids: value lists split on top-level commas only, cross products, folder names, checks before runs."""

from __future__ import annotations

import pytest

from pyro_vae.errors import ConfigError
from pyro_vae.experiments.grid import build, cells, parse_axes, split_values


def test_values_split_on_top_level_commas_only():
    assert split_values("1e-3,1e-2") == ["1e-3", "1e-2"]
    assert split_values("[256,128],[64]") == ["[256,128]", "[64]"]
    assert split_values("{a: 1, b: [2,3]}") == ["{a: 1, b: [2,3]}"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_axes_and_plain_overrides():
    axes, plain = parse_axes(["train.lr=1e-3,1e-2", "seed=0,1,2", "train.epochs=3", "model.network.hidden_dims=[8,4]"])
    assert axes == {"train.lr": ["1e-3", "1e-2"], "seed": ["0", "1", "2"]}
    assert plain == ["train.epochs=3", "model.network.hidden_dims=[8,4]"]
    axes, plain = parse_axes(["seed=0", "train.epochs=3"], keep=["seed"])  # an axis of one value: a column
    assert axes == {"seed": ["0"]} and plain == ["train.epochs=3"]


@pytest.mark.parametrize("bad, words", [
    (["train.lr=1e-3,"], "train.lr: empty value"),
    (["=1,2"], "expected key=value"),
    (["seed=0,1", "seed=2,3"], "seed: swept twice"),
    (["seed=0,1,0"], "seed: a value repeats"),
])
def test_malformed_grids_are_one_line(bad, words):
    with pytest.raises(ConfigError, match=words):
        parse_axes(bad)


def test_cross_product_with_safe_unique_names():
    grid = cells({"model.network.hidden_dims": ["[8, 4]", "[8,4]", "[16]"], "seed": ["0", "1"]}, ["train.epochs=1"])
    assert len(grid) == 6
    names = [c.name for c in grid]
    assert len(set(names)) == 6 and all("/" not in n and " " not in n for n in names)
    assert names[0] == "model.network.hidden_dims=8-4,seed=0"
    assert grid[-1].overrides == ["train.epochs=1", "model.network.hidden_dims=[16]", "seed=1"]
    assert cells({}, ["seed=3"])[0].name == "run"


def test_every_cell_is_checked_before_any_run():
    grid = build(None, ["model.latent_dim=2,3", "train.epochs=1"])
    assert [c.config.model.latent_dim for c in grid] == [2, 3]
    with pytest.raises(ConfigError, match=r"model.latnt_dim: unknown key.*grid cell model.latnt_dim=2"):
        build(None, ["model.latnt_dim=2,3"])
    with pytest.raises(ConfigError, match=r"train.lr: got -1.0.*grid cell train.lr=-1"):
        build(None, ["train.lr=1e-3,-1"])
