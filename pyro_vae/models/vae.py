"""The variational autoencoder as a Pyro model/guide pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..config.schema import component, opt, positive
from ..errors import ConfigError
from ..priors.base import ConditionalPrior, EncoderPrior, build_prior
from ..priors.conditional import UNCONDITIONED
from ..registry import LIKELIHOODS, MODELS, NETWORKS, PRIORS
from .base import LatentModel
from .program import DecoderModel


@dataclass
class VAEConfig:
    type: str = "vae"
    latent_dim: int = opt(8, "dimension of z", positive, "an integer >= 1")
    network: Any = component(NETWORKS, lambda: NETWORKS.get("mlp").config_cls(), "encoder/decoder architecture")
    prior: Any = component(PRIORS, lambda: PRIORS.get("normal").config_cls(), "p(z)")
    likelihood: Any = component(LIKELIHOODS, lambda: LIKELIHOODS.get("bernoulli").config_cls(), "p(x|z)")


@MODELS.register("vae", VAEConfig)
class VAE(DecoderModel, LatentModel):
    """VAE: z ~ p(z), x ~ p(x|z) = likelihood(decoder(z)); guide q(z|x) = N(μ(x), diag σ²(x)).

    Sites: ``z`` (latent, event dim 1) and ``x`` (data, event dims = data dims), both inside
    ``pyro.plate("data")``; the model is :meth:`DecoderModel.model`. Subclasses change it through hooks:
    :meth:`build_condition` (a condition c), :meth:`encoder_cond_dim` (what else the encoder reads),
    :meth:`corrupt` (the guide's input) and :meth:`posterior` (the guide's family).
    """

    max_plate_nesting = 1
    #: the model reads a condition c (:meth:`build_condition` gives one): a learned p(z|c) needs it
    conditional = False

    def __init__(self, config: VAEConfig, data_shape: Tuple[int, ...], num_classes: int = 10,
                 cond_dim: Optional[int] = None) -> None:
        """``cond_dim``: the width of a condition c that a subclass threads through encoder, decoder and p(z|c)
        by itself (default: the width of :meth:`build_condition`'s c; 0 without one)."""
        super().__init__()
        self.check_config(config)
        self.config, self.data_shape, self.num_classes = config, tuple(data_shape), num_classes
        self.latent_dim = config.latent_dim
        self.cond = self.build_condition()
        self.cond_dim = cond_dim if cond_dim is not None else 0 if self.cond is None else self.cond.dim
        net = NETWORKS.get(config.network.type).cls
        self.likelihood = LIKELIHOODS.build(config.likelihood, self.data_shape)
        self.prior = build_prior(config.prior, config.latent_dim, self.cond_dim)
        self.encoder = net.encoder(config.network, self.data_shape, config.latent_dim, self.encoder_cond_dim())
        self.decoder = net.decoder(config.network, config.latent_dim, self.data_shape, self.likelihood.num_params,
                                   self.cond_dim)
        if isinstance(self.prior, EncoderPrior):  # a VampPrior mixes q(z|u_k) at pseudo-inputs u_k
            self.prior.attach(self.encoder, self.data_shape)

    @classmethod
    def check_config(cls, config: VAEConfig) -> None:
        prior = PRIORS.get(config.prior.type, key="model.prior.type").cls
        if issubclass(prior, ConditionalPrior) and prior.needs_condition(config.prior) and not cls.conditional:
            raise ConfigError(UNCONDITIONED)

    @classmethod
    def enumerated_sites_for(cls, config: VAEConfig) -> Tuple[str, ...]:
        return PRIORS.get(config.prior.type, key="model.prior.type").cls.enumerated_sites_for(config.prior)

    @property
    def enumerated_sites(self) -> Tuple[str, ...]:
        """Discrete sites the model marks for enumeration: they need ``train.objective: enum``."""
        return self.prior.enumerated_sites

    # ---- construction hooks ----
    def build_condition(self) -> Optional[nn.Module]:
        """The condition c(x, y) (a :class:`~pyro_vae.models.cvae.Condition`), or None for p(z) p(x|z)."""
        return None

    def encoder_cond_dim(self) -> int:
        """Width of what the encoder reads beside x: the condition c (a GMVAE: the one-hot component y)."""
        return self.cond_dim

    # ---- the guide ----
    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """q(z|x̃,c) = N(μ(x̃,c), diag σ²(x̃,c)), sampled by reparameterization z = μ + σ ⊙ ε; x̃ = corrupt(x)."""
        pyro.module("vae", self)
        c = self.condition(x, y)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.posterior(self.corrupt(x), c))

    def corrupt(self, x: Tensor) -> Tensor:
        """The guide's input x̃ ~ C(x̃|x); the identity here (a denoising autoencoder corrupts x)."""
        return x

    def posterior(self, x: Tensor, c: Optional[Tensor]) -> TorchDistribution:
        """q(z | x, c), event shape ``(latent_dim,)``: the encoder's diagonal Gaussian."""
        loc, scale = self.encoder(x, c)
        return dist.Normal(loc, scale).to_event(1)

    # ---- conveniences for pictures and evaluation (no Pyro sites) ----
    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Posterior mean and standard deviation of q(z|x) (of q(z|x,c) for a conditional model)."""
        return self.encoder(x, self.condition(x, y))

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
