"""The variational autoencoder as a Pyro model/guide pair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import pyro
import torch
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..config.schema import component, opt, positive
from ..errors import ConfigError
from ..guides.base import build_guide
from ..nets.base import MappedInput
from ..priors.base import ConditionalPrior, EncoderPrior, build_prior
from ..priors.conditional import UNCONDITIONED
from ..registry import GUIDES, LIKELIHOODS, MODELS, NETWORKS, PRIORS
from .base import LatentModel
from .program import DecoderModel


@dataclass
class VAEConfig:
    type: str = "vae"
    latent_dim: int = opt(8, "dimension of z", positive, "an integer >= 1")
    network: Any = component(NETWORKS, lambda: NETWORKS.get("mlp").config_cls(), "encoder/decoder architecture")
    prior: Any = component(PRIORS, lambda: PRIORS.get("normal").config_cls(), "p(z)")
    likelihood: Any = component(LIKELIHOODS, lambda: LIKELIHOODS.get("bernoulli").config_cls(), "p(x|z)")
    guide: Any = component(GUIDES, lambda: GUIDES.get("gaussian").config_cls(), "q(z|x): the posterior family")


def check_own_guide(config: VAEConfig) -> None:
    """ConfigError unless ``model.guide`` is ``gaussian``: for a model whose guide is its own (Gaussian given its
    discrete latent), not a ``model.guide`` family."""
    if not GUIDES.get(config.guide.type, key="model.guide.type").cls.diagonal_gaussian:
        raise ConfigError(f"model.guide.type: model.type {config.type} has a guide of its own and takes only "
                          f"'gaussian', got {config.guide.type!r}")


@MODELS.register("vae", VAEConfig)
class VAE(DecoderModel, LatentModel):
    """VAE: z ~ p(z), x ~ p(x|z) = likelihood(decoder(z)); guide q(z|x) of family ``model.guide`` (N(μ, diag σ²)).

    Sites: ``z`` (latent, event dim 1) and ``x`` (data, event dims = data dims), both inside
    ``pyro.plate("data")``; the model is :meth:`DecoderModel.model`. Subclasses change it through hooks:
    :meth:`build_condition` (a condition c), :meth:`encoder_cond_dim` (what else the encoder reads),
    :meth:`corrupt` (the guide's input) and :meth:`posterior` (the guide's family: ``model.guide``, a
    :class:`~pyro_vae.guides.base.Guide` on the encoder, unless a subclass sets ``swappable_guide = False``).
    """

    max_plate_nesting = 1
    #: the model reads a condition c (:meth:`build_condition` gives one): a learned p(z|c) needs it
    conditional = False
    #: q(z|x) is the ``model.guide`` family (False: the model has its own guide and takes only ``gaussian``)
    swappable_guide = True

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
        self.encoder = net.encoder(config.network, self.likelihood.encoder_shape(), config.latent_dim,
                                   self.encoder_cond_dim())
        if self.likelihood.encoder_shape() != self.data_shape:  # e.g. a table's one-hot cells and observation mask
            self.encoder = MappedInput(self.likelihood.encoder_input, self.encoder)
        self.decoder = net.decoder(config.network, config.latent_dim, self.data_shape, self.likelihood.num_params,
                                   self.cond_dim)
        self.guide_family = build_guide(config.guide, config.latent_dim, self.encoder)
        if isinstance(self.prior, EncoderPrior):  # a VampPrior mixes q0(z|u_k) = N(μ(u_k), σ²(u_k)) at pseudo-inputs
            self.prior.attach(self.encoder, self.data_shape)

    @property
    def gaussian_posterior(self) -> bool:  # type: ignore[override]
        """q(z|x) is the encoder's N(μ(x), diag σ²(x)): the ``gaussian`` guide family."""
        return self.guide_family.diagonal_gaussian

    @classmethod
    def check_config(cls, config: VAEConfig) -> None:
        prior = PRIORS.get(config.prior.type, key="model.prior.type").cls
        if issubclass(prior, ConditionalPrior) and prior.needs_condition(config.prior) and not cls.conditional:
            raise ConfigError(UNCONDITIONED)
        if not cls.swappable_guide:
            check_own_guide(config)
        GUIDES.get(config.guide.type, key="model.guide.type").cls.check_config(config.guide, config.latent_dim)

    @classmethod
    def guide_family_for(cls, config: VAEConfig) -> Optional[type]:
        return GUIDES.get(config.guide.type, key="model.guide.type").cls if cls.swappable_guide else None

    @classmethod
    def enumerated_sites_for(cls, config: VAEConfig) -> Tuple[str, ...]:
        return PRIORS.get(config.prior.type, key="model.prior.type").cls.enumerated_sites_for(config.prior)

    @property
    def enumerated_sites(self) -> Tuple[str, ...]:
        """Discrete sites the model marks for enumeration: they need ``train.objective: enum``."""
        return self.prior.enumerated_sites

    # ---- construction hooks ----
    def build_condition(self) -> Optional[nn.Module]:
        """The condition c(x, y) (a :class:`~pyro_vae.models.condition.Condition`), or None for p(z) p(x|z)."""
        return None

    def encoder_cond_dim(self) -> int:
        """Width of what the encoder reads beside x: the condition c (a GMVAE: the one-hot component y)."""
        return self.cond_dim

    # ---- the guide ----
    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """z ~ q(z|x̃,c), the ``model.guide`` family, reparameterized (z = μ + σ ⊙ ε by default); x̃ = corrupt(x)."""
        pyro.module("vae", self)
        c = self.condition(x, y)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.posterior(self.corrupt(x), c))

    def corrupt(self, x: Tensor) -> Tensor:
        """The guide's input x̃ ~ C(x̃|x); the identity here (a denoising autoencoder corrupts x)."""
        return x

    def posterior(self, x: Tensor, c: Optional[Tensor]) -> TorchDistribution:
        """q(z | x, c), event shape ``(latent_dim,)``: the guide family on the encoder's reading of (x, c)."""
        return self.guide_family(self.encoder, x, c)

    # ---- conveniences for pictures and evaluation (no Pyro sites) ----
    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The encoder's (μ(x), σ(x)) (of (x, c) for a conditional model): q(z|x)'s mean and standard deviations
        for the diagonal guide; the mean and the diagonal of L for full_covariance; the base q0 of an iaf."""
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
