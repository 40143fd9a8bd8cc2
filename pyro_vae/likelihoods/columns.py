"""A likelihood per table column (HI-VAE style): gaussian, bernoulli, poisson / negative_binomial or categorical by
the column's kind, scoring only the observed cells.

    log p(x_obs | z) = Σ_{j observed} log p_j(x_j | θ_j(z))

The decoder emits ``(P, D)`` maps (P = the most parameters any column needs: a categorical column's L logits,
one for every other family); column j reads the first P_j of its own. A missing cell (NaN) contributes nothing:
the per-cell mask is applied inside ``log_prob`` (the effect of Pyro's ``obs_mask`` without its extra latent
site for the missing cells, which the guide would have to cover). The encoder reads the zero-filled cells, each
categorical column one-hot, and the observation mask (:meth:`ColumnsLikelihood.encoder_input`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Sequence

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits, softplus

from ..config.schema import opt, positive
from ..data.columns import ColumnSpec
from ..errors import ConfigError, DataError
from ..registry import LIKELIHOODS
from .base import Likelihood

FAMILIES: Dict[str, tuple] = {"continuous": ("gaussian",), "binary": ("bernoulli",),
                              "count": ("poisson", "negative_binomial", "gaussian"), "categorical": ("categorical",)}
ORDER = ("gaussian", "bernoulli", "poisson", "negative_binomial", "categorical")


def _families(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and v in ORDER for k, v in value.items())


@dataclass
class ColumnsConfig:
    type: str = "columns"
    continuous: Literal["gaussian"] = opt("gaussian", "family of continuous columns (σ learned per column)")
    binary: Literal["bernoulli"] = opt("bernoulli", "family of binary columns")
    count: Literal["poisson", "negative_binomial", "gaussian"] = opt("poisson", "family of count columns")
    categorical: Literal["categorical"] = opt("categorical", "family of categorical columns (levels from the data)")
    per_column: Any = opt({}, "column name -> family, overriding its kind's", _families,
                          "a mapping of column names to gaussian, bernoulli, poisson, negative_binomial or categorical")
    sigma: float = opt(1.0, "initial σ of each gaussian column (learned per column; 1 is a standardized "
                            "column's spread)", positive, "a number > 0")
    min_sigma: float = opt(1e-3, "lower bound on a learned σ", positive, "a number > 0")
    theta: float = opt(1.0, "initial inverse dispersion of each negative_binomial column", positive, "a number > 0")
    max_log_rate: float = opt(15.0, "upper clamp on a count column's log-rate")
    columns: List[ColumnSpec] = opt([], "the table's feature columns (filled from the data when empty)")


def family_of(config: ColumnsConfig, spec: ColumnSpec) -> str:
    """The family of column ``spec``: its ``per_column`` entry, else its kind's; a ConfigError if it cannot model it."""
    family = config.per_column.get(spec.name) or getattr(config, spec.kind)
    if family not in FAMILIES[spec.kind]:
        raise ConfigError(f"model.likelihood.per_column.{spec.name}: {family!r} cannot model a {spec.kind} column; "
                          f"allowed: {', '.join(FAMILIES[spec.kind])}")
    return family


#: the models whose encoder and decoder a ``columns`` likelihood is wired into
COLUMN_MODELS = ("vae",)


def check_columns(config: Any) -> None:
    """Cross-section rules of a run config: the ``columns`` likelihood only with a plain VAE, and
    ``data.missing: mask`` only with the ``columns`` likelihood (the one that scores observed cells only)."""
    likelihood = getattr(config.model, "likelihood", None)
    columns = getattr(likelihood, "type", None) == "columns"
    if columns and config.model.type not in COLUMN_MODELS:
        raise ConfigError(f"model.likelihood.type: columns works with model.type {' or '.join(COLUMN_MODELS)}, "
                          f"not {config.model.type!r}")
    if getattr(config.data, "missing", "error") == "mask" and not columns:
        raise ConfigError("data.missing: mask needs model.likelihood.type: columns (it scores only observed cells)")


def fill_columns(model_config: Any, columns: Sequence[ColumnSpec]) -> None:
    """Record the data's columns in a ``columns`` likelihood config (so the run loads back without the data);
    for any other likelihood, a categorical column is a ConfigError naming the option."""
    likelihood = getattr(model_config, "likelihood", None)
    if getattr(likelihood, "type", None) == "columns":
        if not likelihood.columns:
            likelihood.columns = [ColumnSpec(c.name, c.kind, list(c.levels)) for c in columns]
        elif [(c.name, c.kind) for c in likelihood.columns] != [(c.name, c.kind) for c in columns]:
            raise ConfigError("model.likelihood.columns: differ from the data's feature columns "
                              f"({', '.join(c.name for c in columns)}); leave it empty to take the data's")
        return
    categorical = [c.name for c in columns if c.kind == "categorical"]
    if categorical:
        raise ConfigError(f"model.likelihood.type: column {categorical[0]!r} is categorical; only "
                          "model.likelihood.type: columns models categories (or leave it out of data.feature_columns)")


class ColumnsDistribution(dist.TorchDistribution):
    """Independent per-column distributions over x ∈ R^D (event shape ``(D,)``); NaN cells are not scored."""

    arg_constraints: Dict[str, constraints.Constraint] = {}
    support = constraints.real_vector

    def __init__(self, likelihood: "ColumnsLikelihood", params: Tensor) -> None:
        self.likelihood, self.params = likelihood, params
        super().__init__(params.shape[:-2], torch.Size([params.shape[-1]]), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape) + self.params.shape[-2:]
        return ColumnsDistribution(self.likelihood, self.params.expand(shape))

    def cell_log_prob(self, value: Tensor) -> Tensor:
        """log p_j(x_j | θ_j) per cell, shape ``(..., D)``; 0 where x_j is missing."""
        return self.likelihood.cell_log_prob(self.params, value)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.cell_log_prob(value).sum(-1)

    def sample(self, sample_shape=torch.Size()) -> Tensor:
        with torch.no_grad():
            return self.likelihood.sample(self.params.expand(torch.Size(sample_shape) + self.params.shape))

    @property
    def mean(self) -> Tensor:
        return self.likelihood.mean(self.params)


@LIKELIHOODS.register("columns", ColumnsConfig)
class ColumnsLikelihood(Likelihood):
    """One family per table column: log p(x_obs|z) = Σ_{j observed} log p_j(x_j | θ_j(z)), p_j gaussian, bernoulli,
    poisson, negative_binomial or categorical by the column's kind (``model.likelihood.columns``)."""

    needs_columns = True  # applies to a table's columns only (not to images or plain vectors)

    def __init__(self, config: ColumnsConfig, data_shape) -> None:
        super().__init__(data_shape)
        self.config = config
        specs = list(config.columns)
        if not specs:
            raise ConfigError("model.likelihood.type: columns needs a table's columns (data.type: table), "
                              "filled in from the data when the run starts")
        if self.data_shape != (len(specs),):
            raise ConfigError(f"model.likelihood.columns: {len(specs)} columns, but the data has shape "
                              f"{self.data_shape}; expected ({len(specs)},)")
        self.specs = specs
        self.families = [family_of(config, s) for s in specs]
        self.num_params = max([len(s.levels) for s in specs if s.kind == "categorical"] + [1])
        for family in ORDER:
            self.register_buffer(f"{family}_idx", torch.tensor([j for j, f in enumerate(self.families) if f == family],
                                                               dtype=torch.long), persistent=False)
        levels = torch.tensor([len(specs[j].levels) for j in self.categorical_idx.tolist()], dtype=torch.long)
        # categorical logits beyond a column's own L_j levels are masked out
        self.register_buffer("level_mask", torch.arange(self.num_params)[None, :] >= levels[:, None], persistent=False)
        sigma0 = math.log(math.expm1(max(config.sigma - config.min_sigma, 1e-6)))
        self.rho_sigma = nn.Parameter(torch.full((len(self.gaussian_idx),), sigma0))
        self.rho_theta = nn.Parameter(torch.full((len(self.negative_binomial_idx),), math.log(math.expm1(config.theta))))

    # ---- parameters per family ----
    def first(self, params: Tensor, idx: Tensor) -> Tensor:
        """The first parameter map of columns ``idx``: ``(..., |idx|)``."""
        return params[..., 0, :].index_select(-1, idx)

    def sigma(self) -> Tensor:
        return self.config.min_sigma + softplus(self.rho_sigma)

    def theta(self) -> Tensor:
        return softplus(self.rho_theta) + 1e-6

    def category_logits(self, params: Tensor) -> Tensor:
        """Normalized log-probabilities of the categorical columns' levels, ``(..., C, P)`` (−inf beyond L_j)."""
        logits = params.index_select(-1, self.categorical_idx).transpose(-1, -2)
        return logits.masked_fill(self.level_mask, -math.inf).log_softmax(-1)

    def parts(self, params: Tensor) -> Dict[str, dist.Distribution]:
        """The torch distribution of each non-categorical family over its columns."""
        out: Dict[str, dist.Distribution] = {}
        if len(self.gaussian_idx):
            loc = self.first(params, self.gaussian_idx)
            out["gaussian"] = dist.Normal(loc, self.sigma().expand_as(loc))
        if len(self.poisson_idx):
            out["poisson"] = dist.Poisson(self.first(params, self.poisson_idx).clamp(max=self.config.max_log_rate).exp(),
                                          validate_args=False)
        if len(self.negative_binomial_idx):
            log_mu = self.first(params, self.negative_binomial_idx).clamp(max=self.config.max_log_rate)
            theta = self.theta().expand_as(log_mu)
            out["negative_binomial"] = dist.NegativeBinomial(total_count=theta, logits=log_mu - theta.log(),
                                                             validate_args=False)
        return out

    # ---- scoring ----
    def cell_log_prob(self, params: Tensor, value: Tensor) -> Tensor:
        """log p_j(x_j | θ_j(z)) per cell, ``(..., D)``, 0 at missing (NaN) cells; ``value`` broadcasts with params."""
        shape = torch.broadcast_shapes(params.shape[:-2], value.shape[:-1])
        params, value = params.expand(shape + params.shape[-2:]), value.expand(shape + value.shape[-1:])
        seen = ~torch.isnan(value)
        filled = torch.where(seen, value, torch.zeros_like(value))
        out = torch.zeros_like(filled)
        for family, d in self.parts(params).items():
            idx = getattr(self, f"{family}_idx")
            out = out.index_copy(-1, idx, d.log_prob(filled.index_select(-1, idx)))
        if len(self.bernoulli_idx):
            idx = self.bernoulli_idx
            ll = -binary_cross_entropy_with_logits(self.first(params, idx), filled.index_select(-1, idx), reduction="none")
            out = out.index_copy(-1, idx, ll)
        if len(self.categorical_idx):
            idx = self.categorical_idx
            codes = filled.index_select(-1, idx).long().clamp(0, self.num_params - 1)
            ll = self.category_logits(params).gather(-1, codes.unsqueeze(-1)).squeeze(-1)
            out = out.index_copy(-1, idx, ll)
        return torch.where(seen, out, torch.zeros_like(out))

    def distribution(self, params: Tensor) -> ColumnsDistribution:
        return ColumnsDistribution(self, params)

    def point(self, params: Tensor, draw: bool) -> Tensor:
        """Per column: a draw from p_j(x_j | θ_j) (``draw``), else its mean (categorical and bernoulli: the mode)."""
        out = torch.zeros(params.shape[:-2] + params.shape[-1:], dtype=params.dtype, device=params.device)
        for family, d in self.parts(params).items():
            out = out.index_copy(-1, getattr(self, f"{family}_idx"), d.sample() if draw else d.mean)
        if len(self.bernoulli_idx):
            logits = self.first(params, self.bernoulli_idx)
            value = torch.bernoulli(torch.sigmoid(logits)) if draw else (logits > 0).to(params.dtype)
            out = out.index_copy(-1, self.bernoulli_idx, value)
        if len(self.categorical_idx):
            logp = self.category_logits(params)
            codes = torch.distributions.Categorical(logits=logp).sample() if draw else logp.argmax(-1)
            out = out.index_copy(-1, self.categorical_idx, codes.to(params.dtype))
        return out

    def mean(self, params: Tensor) -> Tensor:
        """E[x_j|z] per column (binary: the probability; categorical: the most probable level's code)."""
        out = self.point(params, draw=False)
        if len(self.bernoulli_idx):
            out = out.index_copy(-1, self.bernoulli_idx, torch.sigmoid(self.first(params, self.bernoulli_idx)))
        return out

    def sample(self, params: Tensor) -> Tensor:
        return self.point(params, draw=True)

    # ---- what the encoder reads ----
    def encoder_shape(self) -> tuple:
        """Zero-filled cells (categorical: one-hot over its levels) and the D-cell observation mask."""
        width = sum(len(s.levels) if s.kind == "categorical" else 1 for s in self.specs)
        return (width + len(self.specs),)

    def encoder_input(self, x: Tensor) -> Tensor:
        seen = ~torch.isnan(x)
        filled = torch.where(seen, x, torch.zeros_like(x))
        pieces: List[Tensor] = []
        for j, spec in enumerate(self.specs):
            if spec.kind == "categorical":
                one_hot = nn.functional.one_hot(filled[..., j].long().clamp(0, len(spec.levels) - 1), len(spec.levels))
                pieces.append(one_hot.to(x.dtype) * seen[..., j:j + 1].to(x.dtype))
            else:
                pieces.append(filled[..., j:j + 1])
        return torch.cat(pieces + [seen.to(x.dtype)], -1)

    def validate(self, x: Tensor) -> None:
        seen = ~torch.isnan(x)
        if not torch.isfinite(x[seen]).all():
            raise DataError("columns likelihood: data contains inf values")
        for j, spec in enumerate(self.specs):
            col = x[..., j][seen[..., j]]
            if spec.kind == "categorical" and col.numel() and (col.min() < 0 or col.max() >= len(spec.levels)):
                raise DataError(f"columns likelihood: column {spec.name!r} holds codes outside 0..{len(spec.levels) - 1}")
