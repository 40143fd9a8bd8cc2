"""The variational autoencoder as a Pyro model/guide pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor, nn

from ..config.schema import component, opt, positive
from ..registry import LIKELIHOODS, MODELS, NETWORKS, PRIORS
from .base import LatentModel


@dataclass
class VAEConfig:
    type: str = "vae"
    latent_dim: int = opt(8, "dimension of z", positive, "an integer >= 1")
    network: Any = component(NETWORKS, lambda: NETWORKS.get("mlp").config_cls(), "encoder/decoder architecture")
    prior: Any = component(PRIORS, lambda: PRIORS.get("normal").config_cls(), "p(z)")
    likelihood: Any = component(LIKELIHOODS, lambda: LIKELIHOODS.get("bernoulli").config_cls(), "p(x|z)")


@MODELS.register("vae", VAEConfig)
class VAE(LatentModel):
    """VAE: z ~ p(z), x ~ p(x|z) = likelihood(decoder(z)); guide q(z|x) = N(μ(x), diag σ²(x)).

    Sites: ``z`` (latent, event dim 1) and ``x`` (data, event dims = data dims), both inside
    ``pyro.plate("data")``.
    """

    max_plate_nesting = 1

    def __init__(self, config: VAEConfig, data_shape: Tuple[int, ...], num_classes: int = 10,
                 cond_dim: int = 0) -> None:
        """``cond_dim`` > 0 (a conditional VAE) widens encoder and decoder to take a condition c of that width."""
        super().__init__()
        self.config, self.data_shape, self.num_classes = config, tuple(data_shape), num_classes
        self.cond_dim = cond_dim
        net = NETWORKS.get(config.network.type).cls
        self.likelihood = LIKELIHOODS.build(config.likelihood, self.data_shape)
        self.prior = self.build_prior()
        self.encoder = net.encoder(config.network, self.data_shape, config.latent_dim, cond_dim)
        self.decoder = net.decoder(config.network, config.latent_dim, self.data_shape, self.likelihood.num_params,
                                   cond_dim)
        if getattr(self.prior, "needs_encoder", False):  # a VampPrior mixes q(z|u_k) at pseudo-inputs u_k
            self.prior.attach(self.encoder, self.data_shape)

    def build_prior(self) -> nn.Module:
        """p(z) from ``config.prior`` (a conditional model overrides this to size p(z|c))."""
        return PRIORS.build(self.config.prior, self.config.latent_dim)

    def model(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """p(z) p(x|z); with ``x=None`` draws ``num_samples`` new datapoints."""
        pyro.module("vae", self)
        with pyro.plate("data", x.shape[0] if x is not None else num_samples):
            z = self.prior()
            return self.likelihood(self.decoder(z), x)

    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """q(z|x) = N(μ(x), diag σ²(x)), sampled by reparameterization z = μ + σ ⊙ ε."""
        pyro.module("vae", self)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encode(x, y)
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    @property
    def enumerated_sites(self) -> Tuple[str, ...]:
        """Discrete sites the model marks for enumeration: they need ``train.objective: enum``."""
        return self.prior.enumerated_sites

    # ---- conveniences for pictures and evaluation (no Pyro sites) ----
    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Posterior mean and standard deviation of q(z|x)."""
        return self.encoder(x)

    def decode(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z]."""
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x | z = μ(x)]."""
        return self.decode(self.encode(x, y)[0], y)

    @torch.no_grad()
    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z] for ``num_samples`` draws z ~ p(z)."""
        z = self.prior.distribution().sample((num_samples,))
        return self.decode(z, y)
