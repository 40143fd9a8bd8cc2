"""The prior contract: a module ``p(c) -> Distribution`` over z, with its capabilities declared by type.

* :class:`Prior` — p(z): built as ``cls(config, latent_dim)``; ``prior(c)`` is :meth:`Prior.distribution`.
* :class:`ConditionalPrior` — p(z|c): built as ``cls(config, latent_dim, cond_dim)`` by models with a condition.
* :class:`EncoderPrior` — mixes the model's own encoder (the VampPrior): the model calls :meth:`EncoderPrior.attach`.
* :class:`ImproperPrior` — log p(z) = 0 with no samples (the flat prior): nothing to generate from.
* :class:`MixturePrior` — Σ_k π_k N(z | μ_k, diag σ_k²): :meth:`MixturePrior.components` for pictures and clustering.

A prior with latent sites of its own declares them: :meth:`Prior.sites` gives their distributions, the
model samples each (``y = pyro.sample("y", site.distribution, infer=site.infer)``), then draws
``z = pyro.sample("z", prior.distribution_given(values, c))``; the GMM prior's ``form: enumerate`` declares
``y ~ Cat(π)`` (in ``enumerated_sites``) and gives N(μ_y, σ_y) for z.
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Tuple

import pyro.distributions as dist
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..registry import PRIORS


class Site(NamedTuple):
    """A latent site a prior adds before z: its name, distribution and Pyro ``infer`` options."""

    name: str
    distribution: TorchDistribution
    infer: Dict[str, Any]


class Prior(nn.Module):
    """p(z): subclasses give :meth:`distribution`, the marginal density of ``z`` (event shape ``(latent_dim,)``)."""

    #: discrete sites among :meth:`sites`, summed out by TraceEnum_ELBO (``train.objective: enum``)
    enumerated_sites: Tuple[str, ...] = ()

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    @classmethod
    def enumerated_sites_for(cls, config: Any) -> Tuple[str, ...]:
        """The ``enumerated_sites`` a prior built from ``config`` will have (checked before any data is read)."""
        return cls.enumerated_sites

    def distribution(self, context: Optional[Tensor] = None) -> TorchDistribution:
        """The distribution of ``z`` (given the condition ``context``, which an unconditional prior ignores)."""
        raise NotImplementedError

    def forward(self, context: Optional[Tensor] = None) -> TorchDistribution:
        """``p(c)``: the distribution of ``z`` (:meth:`distribution`)."""
        return self.distribution(context)

    #: the ``pyro.factor`` site of :meth:`penalty` in the model (training mode only)
    penalty_site: str = "prior_penalty"

    def penalty(self, z: Optional[Tensor] = None) -> Optional[Tensor]:
        """Ω of a training-only regulariser (the prior's own parameters θ, or the batch's codes ``z`` drawn at
        site ``z``, all particles), added to the model as the factor −Ω per datapoint at :attr:`penalty_site`
        in training mode (never in a held-out number); None here."""
        return None

    def sites(self, context: Optional[Tensor] = None) -> Tuple[Site, ...]:
        """The latent sites the model samples before z, in order (inside ``pyro.plate("data")``); none here."""
        return ()

    def distribution_given(self, values: Dict[str, Tensor], context: Optional[Tensor] = None) -> TorchDistribution:
        """p(z | the values of :meth:`sites`, c): what the model's site ``z`` draws from; :meth:`distribution` here."""
        return self.distribution(context)

    def log_prob(self, z: Tensor, context: Optional[Tensor] = None) -> Tensor:
        """log p(z) summed over the latent dims, shape ``z.shape[:-1]``."""
        return self.distribution(context).log_prob(z)


def moments_penalty(mean: Tensor, var: Tensor, strength: float) -> Tensor:
    """The gauge term λ/2·(‖m‖² + Σ_d log² v_d): zero exactly at mean 0 and unit variances. Under an affine map
    z ↦ a ⊙ z + c, m ↦ a ⊙ m + c and v ↦ a² v, so it pins the latent origin and scale a prior leaves free."""
    return 0.5 * strength * (mean.pow(2).sum() + var.log().pow(2).sum())


class ConditionalPrior(Prior):
    """p(z|c): built with the width ``cond_dim`` of the model's condition c (0 for an unconditional model)."""

    def __init__(self, latent_dim: int, cond_dim: int = 0) -> None:
        super().__init__(latent_dim)
        self.cond_dim = cond_dim

    @classmethod
    def needs_condition(cls, config: Any) -> bool:
        """True when a prior built from ``config`` cannot work without a condition (cond_dim >= 1)."""
        return True


class EncoderPrior(Prior):
    """A prior built from the model's encoder (e.g. the VampPrior mixes q(z|u_k)): the model calls :meth:`attach`."""

    def attach(self, encoder: nn.Module, data_shape: Tuple[int, ...]) -> None:
        """Give the prior the encoder x -> (μ, σ) and the data shape, once the model has built them."""
        raise NotImplementedError


class ImproperPrior(Prior):
    """An improper prior (a density with no normalizer, e.g. p(z) ∝ 1): it scores z but has no samples."""


class MixturePrior(Prior):
    """A prior whose density is a mixture Σ_k π_k N(z | μ_k, diag σ_k²); :meth:`components` exposes it.

    Subclasses give :meth:`components`; pictures and clustering use it without knowing the prior.
    """

    def components(self) -> Tuple[Tensor, Tensor, Tensor]:
        """``(weights (K,), locs (K, D), scales (K, D))`` of the mixture."""
        raise NotImplementedError

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        return self.mixture(*self.components())

    @staticmethod
    def mixture(weights: Tensor, locs: Tensor, scales: Tensor) -> dist.TorchDistribution:
        """Σ_k π_k N(z | μ_k, diag σ_k²) as a distribution with event shape ``(D,)``."""
        return dist.MixtureSameFamily(dist.Categorical(probs=weights), dist.Normal(locs, scales).to_event(1))

    def log_responsibilities(self, z: Tensor) -> Tensor:
        """log p(y = k | z) = log π_k N(z|μ_k,σ_k) − log Σ_j π_j N(z|μ_j,σ_j), shape ``z.shape[:-1] + (K,)``
        (differentiable)."""
        weights, locs, scales = self.components()
        joint = weights.log() + dist.Normal(locs, scales).to_event(1).log_prob(z.unsqueeze(-2))
        return joint - joint.logsumexp(-1, keepdim=True)

    @torch.no_grad()
    def responsibilities(self, z: Tensor) -> Tensor:
        """p(y = k | z) = π_k N(z|μ_k,σ_k) / Σ_j π_j N(z|μ_j,σ_j), shape ``z.shape[:-1] + (K,)``."""
        return self.log_responsibilities(z).exp()


def batch_marginal_entropy(probs: Tensor) -> Tensor:
    """H(q̄) = −Σ_k q̄_k log q̄_k of q̄ = the mean of ``probs`` ``(..., K)`` over all its leading dims (a batch's
    marginal class distribution: the balance terms of the GMVAE and of the GMM prior)."""
    q_bar = probs.reshape(-1, probs.shape[-1]).mean(0)
    return -(q_bar * q_bar.clamp_min(1e-12).log()).sum()


def build_prior(config: Any, latent_dim: int, cond_dim: int = 0) -> Prior:
    """The prior named by ``config.type``: a :class:`ConditionalPrior` gets the condition width ``cond_dim``,
    any other prior ignores the condition."""
    cls = PRIORS.get(config.type, key="model.prior.type").cls
    if issubclass(cls, ConditionalPrior):
        return cls(config, latent_dim, cond_dim)
    return cls(config, latent_dim)
