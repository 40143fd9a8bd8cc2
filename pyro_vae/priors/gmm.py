"""Gaussian-mixture prior p(z) = Σ_k π_k N(z | μ_k, diag σ_k²), marginalized or with an explicit component site."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Literal, Optional, Tuple

import pyro.distributions as dist
import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ..config.schema import opt, positive
from ..config.validators import non_negative
from ..errors import ConfigError
from ..registry import PRIORS
from .base import MixturePrior, Site, batch_marginal_entropy


@dataclass
class GMMPriorConfig:
    type: str = "gmm"
    num_components: int = opt(10, "number K of mixture components", positive, "an integer >= 1")
    form: Literal["marginal", "enumerate"] = opt(
        "marginal", "marginal: z ~ MixtureSameFamily; enumerate: site y ~ Cat(π) then z ~ N(μ_y, σ_y) "
        "(train with train.objective: enum)")
    learn_weights: bool = opt(True, "learn the mixture weights π (else uniform 1/K)")
    learn_locs: bool = opt(True, "learn the component means μ_k (else fixed at their random init)")
    learn_scales: bool = opt(True, "learn the component scales σ_k (else fixed at init_scale)")
    init_spread: float = opt(2.0, "component means start at init_spread · N(0, I) (seeded)", positive, "a number > 0")
    init_scale: float = opt(1.0, "initial (or fixed) component scale σ", positive, "a number > 0")
    balance: float = opt(0.0, "weight λ of the training-only term λ·H(q̄) per datapoint, q̄(k) the batch mean of "
                              "p(k|z) at the sampled codes: keeps the components equally used (form marginal; "
                              "0: off)", non_negative, "a number >= 0")


def fit_gaussian_mixture(z: Tensor, num_components: int, seed: int = 0,
                         restarts: int = 1) -> Tuple[Tensor, Tensor, Tensor]:
    """scikit-learn's ``GaussianMixture`` (diagonal covariances, EM, k-means init, ``restarts`` inits) fitted to
    points ``z`` (N, D): ``(weights (K,), locs (K, D), scales (K, D))`` as tensors on ``z``'s device."""
    from sklearn.mixture import GaussianMixture

    points = z.detach().double().cpu().numpy()
    gmm = GaussianMixture(num_components, covariance_type="diag", n_init=restarts, random_state=seed,
                          reg_covar=1e-6).fit(points)
    out = (gmm.weights_, gmm.means_, gmm.covariances_ ** 0.5)
    return tuple(torch.as_tensor(t, dtype=z.dtype, device=z.device) for t in out)


def mixture_of_groups(z: Tensor, labels: Tensor, num_components: int) -> Tuple[Tensor, Tensor, Tensor]:
    """The moments of the points ``z`` (N, D) in each of ``num_components`` groups ``labels`` (N,): π_k = N_k / N,
    μ_k = mean, σ_k = standard deviation (+1e-3; an empty group gets the overall moments and π_k = 1e-6)."""
    z = z.detach()
    onehot = torch.nn.functional.one_hot(labels.long(), num_components).to(z.dtype)
    counts = onehot.sum(0)
    safe = counts.clamp_min(1.0)[:, None]
    locs = onehot.T @ z / safe
    var = onehot.T @ z.pow(2) / safe - locs.pow(2)
    empty = counts == 0
    locs[empty], var[empty] = z.mean(0), z.var(0, unbiased=False)
    weights = (counts / counts.sum()).clamp_min(1e-6)
    return weights / weights.sum(), locs, var.clamp_min(0.0).sqrt() + 1e-3


def _maybe_param(module: nn.Module, name: str, value: Tensor, learn: bool) -> None:
    if learn:
        setattr(module, name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


@PRIORS.register("gmm", GMMPriorConfig)
class GMMPrior(MixturePrior):
    """Gaussian mixture Σ_k π_k N(μ_k, diag σ_k²); π, μ, σ each learnable or fixed."""

    def __init__(self, config: GMMPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        if config.balance > 0 and config.form != "marginal":
            raise ConfigError(f"model.prior.balance: needs form marginal, got form {config.form!r} (the GMVAE's "
                              "balance term on q(y|x) is model.balance)")
        self.config = config
        k = config.num_components
        generator = torch.Generator().manual_seed(k * 1009 + latent_dim)  # fixed means are reproducible
        _maybe_param(self, "weight_logits", torch.zeros(k), config.learn_weights)
        _maybe_param(self, "locs", config.init_spread * torch.randn(k, latent_dim, generator=generator),
                     config.learn_locs)
        # σ = softplus(ρ), ρ chosen so that σ starts at init_scale
        rho = math.log(math.expm1(config.init_scale))
        _maybe_param(self, "scale_rho", torch.full((k, latent_dim), rho), config.learn_scales)

    @classmethod
    def enumerated_sites_for(cls, config: GMMPriorConfig) -> Tuple[str, ...]:
        return ("y",) if config.form == "enumerate" else ()

    @property
    def enumerated_sites(self) -> Tuple[str, ...]:
        return self.enumerated_sites_for(self.config)

    def components(self) -> Tuple[Tensor, Tensor, Tensor]:
        return self.weights(), self.locs, self.scales()

    def weights(self) -> Tensor:
        """π = softmax(logits), shape ``(K,)``."""
        return self.weight_logits.softmax(-1)

    def scales(self) -> Tensor:
        """σ = softplus(ρ) + 1e-4, shape ``(K, D)``."""
        return softplus(self.scale_rho) + 1e-4

    @torch.no_grad()
    def set_components(self, weights: Tensor, locs: Tensor, scales: Tensor) -> None:
        """Overwrite π (K,), μ (K, D) and σ (K, D) in place (e.g. from a fitted GaussianMixture); fixed ones too."""
        k, d = self.locs.shape
        weights, locs, scales = (torch.as_tensor(t, dtype=self.locs.dtype, device=self.locs.device)
                                 for t in (weights, locs, scales))
        if weights.shape != (k,) or locs.shape != (k, d) or scales.shape != (k, d):
            raise ValueError(f"set_components: expected shapes ({k},), ({k}, {d}), ({k}, {d}); got "
                             f"{tuple(weights.shape)}, {tuple(locs.shape)}, {tuple(scales.shape)}")
        self.weight_logits.copy_(weights.clamp_min(1e-12).log() if self.config.learn_weights
                                 else torch.zeros_like(weights))
        self.locs.copy_(locs)
        sigma = (scales - 1e-4).clamp_min(1e-4)  # σ = softplus(ρ) + 1e-4
        self.scale_rho.copy_(sigma + torch.log(-torch.expm1(-sigma)))  # ρ = softplus⁻¹(σ − 1e-4)

    def penalty(self, z: Optional[Tensor] = None) -> Optional[Tensor]:
        """Ω = −λ·H(q̄), q̄(k) = mean over the batch's codes (every particle's) of p(k|z): the balance term, so the
        model gains λ·H(q̄) per datapoint in training; None when ``balance`` is 0."""
        if self.config.balance <= 0 or z is None:
            return None
        return -self.config.balance * batch_marginal_entropy(self.log_responsibilities(z).exp())

    def sites(self, context: Optional[Tensor] = None) -> Tuple[Site, ...]:
        """enumerate: the component ``y ~ Cat(π)``, enumerated in parallel; marginal: none."""
        if self.config.form == "marginal":
            return ()
        return (Site("y", dist.Categorical(probs=self.weights()), {"enumerate": "parallel"}),)

    def distribution_given(self, values: Dict[str, Tensor], context: Optional[Tensor] = None) -> dist.TorchDistribution:
        """marginal: ``Σ_k π_k N(μ_k, σ_k)``; enumerate: ``N(μ_y, σ_y)`` at the component ``y``."""
        if self.config.form == "marginal":
            return self.distribution(context)
        y = values["y"]
        return dist.Normal(self.locs[y], self.scales()[y]).to_event(1)
