"""The columns likelihood: per-cell log densities against torch's closed forms, observed cells only, encoder
input, and the configs it refuses in one line."""

from __future__ import annotations

import pytest
import torch
import torch.distributions as td

from pyro_vae import load_config
from pyro_vae.config.schema import from_dict
from pyro_vae.data.columns import ColumnSpec
from pyro_vae.errors import ConfigError
from pyro_vae.likelihoods import LIKELIHOODS
from pyro_vae.validation import validate

SPECS = [{"name": "t", "kind": "continuous"}, {"name": "f", "kind": "binary"}, {"name": "n", "kind": "count"},
         {"name": "c", "kind": "categorical", "levels": ["a", "b", "c"]}, {"name": "m", "kind": "count"}]


def build(**options):
    config = from_dict(LIKELIHOODS.get("columns").config_cls, {"type": "columns", "columns": SPECS, **options})
    return LIKELIHOODS.build(config, (len(SPECS),))


def test_cell_log_probs_are_the_families_closed_forms_and_missing_cells_score_zero():
    torch.manual_seed(0)
    lik = build(per_column={"m": "negative_binomial"}, sigma=0.7)
    assert lik.num_params == 3  # the categorical column's 3 logits; one map for every other column
    params = torch.randn(4, 3, 5)
    x = torch.tensor([[0.3, 1.0, 2.0, 2.0, 5.0], [float("nan"), 0.0, 0.0, 0.0, 1.0],
                      [1.2, float("nan"), 4.0, 1.0, 0.0], [-0.4, 1.0, float("nan"), float("nan"), 2.0]])
    cells = lik.cell_log_prob(params, x)
    theta = torch.nn.functional.softplus(lik.rho_theta) + 1e-6
    expected = torch.stack([
        td.Normal(params[:, 0, 0], 0.7).log_prob(x[:, 0].nan_to_num()),
        td.Bernoulli(logits=params[:, 0, 1]).log_prob(x[:, 1].nan_to_num()),
        td.Poisson(params[:, 0, 2].exp()).log_prob(x[:, 2].nan_to_num()),
        td.Categorical(logits=params[:, :, 3]).log_prob(x[:, 3].nan_to_num().long()),
        td.NegativeBinomial(theta, logits=params[:, 0, 4] - theta.log()).log_prob(x[:, 4]),
    ], 1)
    seen = ~torch.isnan(x)
    assert torch.allclose(cells[seen], expected[seen], atol=1e-5)
    assert (cells[~seen] == 0).all()
    assert torch.allclose(lik.distribution(params).log_prob(x), cells.sum(-1))


def test_categorical_logits_beyond_a_columns_levels_are_ignored():
    specs = SPECS[:3] + [{"name": "c", "kind": "categorical", "levels": ["a", "b"]},
                         {"name": "d", "kind": "categorical", "levels": ["x", "y", "z", "w"]}]
    config = from_dict(LIKELIHOODS.get("columns").config_cls, {"type": "columns", "columns": specs})
    lik = LIKELIHOODS.build(config, (5,))
    probs = lik.category_logits(torch.randn(2, 4, 5)).exp()  # (B, C, P)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 2)) and (probs[:, 0, 2:] == 0).all()


def test_the_encoder_reads_zero_filled_cells_one_hot_categories_and_the_mask():
    lik = build()
    x = torch.tensor([[0.5, 1.0, 3.0, 1.0, 2.0], [float("nan"), 0.0, 1.0, float("nan"), 0.0]])
    features = lik.encoder_input(x)
    assert features.shape == (2, lik.encoder_shape()[0]) == (2, 4 + 3 + 5)
    assert features[0].tolist() == [0.5, 1.0, 3.0, 0.0, 1.0, 0.0, 2.0, 1, 1, 1, 1, 1]
    assert features[1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0, 1, 1, 0, 1]


def test_learned_sigma_starts_at_one():
    assert torch.allclose(build().sigma(), torch.ones(1))


def test_means_and_draws_stay_in_each_columns_support():
    lik = build()
    params = torch.randn(50, 3, 5)
    for values in (lik.sample(params), lik.point(params, draw=False)):  # a draw; means (modes for categories)
        assert set(values[:, 1].tolist()) <= {0.0, 1.0} and set(values[:, 3].tolist()) <= {0.0, 1.0, 2.0}
        assert (values[:, 2] >= 0).all()
    draws = lik.sample(params)
    assert (draws[:, 2] == draws[:, 2].round()).all()
    assert torch.allclose(lik.point(params, draw=False)[:, 2], params[:, 0, 2].exp())  # the Poisson mean


@pytest.mark.parametrize("overrides, phrase", [
    (["model.type=m2", "model.likelihood=columns"], "model.likelihood.type: columns works with model.type vae"),
    (["model.type=cvae", "model.likelihood=columns"], "not 'cvae'"),
    (["data.type=table", "data.missing=mask"], "data.missing: mask needs model.likelihood.type: columns"),
])
def test_incompatible_configs_are_refused_in_one_line(overrides, phrase):
    with pytest.raises(ConfigError) as e:
        validate(load_config(None, overrides))
    assert phrase in str(e.value) and "\n" not in str(e.value)


def test_a_family_that_cannot_model_the_column_is_refused():
    with pytest.raises(ConfigError, match="per_column.t: 'poisson' cannot model a continuous column"):
        build(per_column={"t": "poisson"})
    with pytest.raises(ConfigError, match="needs a table's columns"):
        LIKELIHOODS.build(from_dict(LIKELIHOODS.get("columns").config_cls, {"type": "columns"}), (1, 4, 4))
    assert ColumnSpec("a").kind == "continuous"
