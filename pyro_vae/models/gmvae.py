"""The Gaussian-mixture VAE (GMVAE): a mixture prior with an explicit component y, and a guide that clusters.

    model:  y ~ Cat(π),  z ~ N(μ_y, diag σ_y²),  x ~ p(x|z)
    guide:  y ~ q(y|x) = Cat(softmax(g(x))),  z ~ q(z|x,y) = N(μ(x,y), diag σ²(x,y))   (the encoder reads [x, onehot y])

Both ``y`` sites are enumerated in parallel, so ``TraceEnum_ELBO`` (``train.objective: enum``) sums y out
exactly: one z_k ~ q(z|x,k) per component, weighted by q(k|x),

    ELBO = Σ_k q(k|x) ( E_q(z|x,k)[ log p(x|z) + log N(z; μ_k, σ_k) − log q(z|x,k) ] + log π_k − log q(k|x) )

whose optimum in q(y|x) is q(k|x) ∝ π_k exp ELBO_k(x): the argmax is the model's clustering. A step costs
K decoder passes (one per component).

Left alone, this GMVAE settles on one or two components: the ELBO's optimum in q(y|x) can put every x in
the component whose π_k grew first. ``balance: λ`` > 0 is the remedy kept here: a prior kept uniform
(``prior.learn_weights: false``) plus a term λ · B · H(q̄(y)) on the minibatch marginal q̄(y) = (1/B) Σ_b q(y|x_b),
added to the training objective (not to the reported ELBO/log p(x)): the marginal-entropy half of the mutual
information I(x; y) that clustering-by-information methods maximize (e.g. Hu et al. 2017, IMSAT), which makes
using all K components pay while each q(y|x) stays free to be confident.

``pretrain.epochs`` > 0 adds VaDE's initialisation (:class:`~pyro_vae.models.mixture_init.MixtureInitMixin`): an
autoencoder pretraining phase through q(z|x, y = uniform), a GaussianMixture fitted to those codes sets
π, μ_k, σ_k, and q(y|x) is fitted (cross-entropy, ``pretrain.classifier_steps``) to the mixture's
responsibilities p(y|z = μ(x)) before the ELBO takes over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.schema import component, opt
from ..config.validators import non_negative, positive
from ..errors import ConfigError
from ..nets.base import hidden_activation, mlp
from ..priors.base import batch_marginal_entropy
from ..registry import MODELS, NETWORKS, PRIORS
from .mixture_init import MixtureInitMixin, PretrainConfig
from .vae import VAE, VAEConfig


def _enumerated_gmm() -> Any:
    return PRIORS.get("gmm").config_cls(form="enumerate")


@dataclass
class GMVAEConfig(VAEConfig):
    type: str = "gmvae"
    prior: Any = component(PRIORS, _enumerated_gmm, "p(y) p(z|y): a gmm prior with form: enumerate")
    classifier_dims: List[int] = opt([256], "hidden widths of the cluster network q(y|x) (an MLP on flattened x)")
    balance: float = opt(0.0, "weight λ of the training term λ·B·H(q̄(y)), q̄(y) the minibatch mean of q(y|x): keeps "
                              "the K components in use (0: off)", non_negative, "a number >= 0")
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(epochs=0))
    classifier_steps: int = opt(300, "after pretraining: Adam steps (batches of 256) fitting q(y|x) to the GMM's "
                                     "responsibilities", positive, "an integer >= 1")


@MODELS.register("gmvae", GMVAEConfig)
class GMVAE(MixtureInitMixin, VAE):
    """Mixture-prior VAE with a cluster guide q(y|x) q(z|x,y); sites ``y``, ``z``, ``x`` inside ``pyro.plate("data")``."""

    gaussian_posterior = False  # q(z|x) = Σ_k q(k|x) q(z|x,k): evaluation skips the Gaussian-only KL split
    swappable_guide = False  # its own guide family: q(y|x) q(z|x,y), Gaussian given y

    def __init__(self, config: GMVAEConfig, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__(config, data_shape, num_classes)
        self.check_pretraining(self.data_shape)
        self.num_components = k = config.prior.num_components
        dims = [math.prod(self.data_shape), *config.classifier_dims]
        activation = hidden_activation(NETWORKS.get(config.network.type).cls, config.network)
        self.classifier = nn.Sequential(nn.Flatten(-len(self.data_shape)), mlp(dims, activation), nn.Linear(dims[-1], k))
        self.pretrain_epochs, self.pretrain_lr = config.pretrain.epochs, config.pretrain.lr

    @classmethod
    def check_config(cls, config: GMVAEConfig) -> None:
        if config.prior.type != "gmm" or config.prior.form != "enumerate":
            form = f", form {config.prior.form!r}" if config.prior.type == "gmm" else ""
            raise ConfigError(f"model.prior: gmvae needs type 'gmm' with form 'enumerate' (its guide q(y|x) "
                              f"proposes the component site y), got type {config.prior.type!r}{form}")
        super().check_config(config)

    def encoder_cond_dim(self) -> int:
        """q(z|x,y) reads the one-hot component y beside x."""
        return self.config.prior.num_components

    def pretrain_codes(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """q(z | x, y = uniform 1/K): the encoder before it is told a component."""
        c = torch.full((*x.shape[:1], self.num_components), 1.0 / self.num_components, device=x.device)
        return self.encoder(x, c)

    def after_mixture_fit(self, x: Tensor, means: Tensor, seed: int) -> None:
        """Fit q(y|x) to the fitted mixture's responsibilities p(y | z = μ(x)) (cross-entropy, Adam, seeded batches)."""
        targets = self.prior.responsibilities(means)
        optim = torch.optim.Adam(self.classifier.parameters(), lr=self.config.pretrain.lr)
        gen = torch.Generator().manual_seed(seed)
        with torch.enable_grad():
            for _ in range(self.config.classifier_steps):
                idx = torch.randint(0, x.shape[0], (min(256, x.shape[0]),), generator=gen).to(x.device)
                loss = -(targets[idx] * self.classifier(x[idx]).log_softmax(-1)).sum(-1).mean()
                optim.zero_grad()
                loss.backward()
                optim.step()

    def model(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """p(y) p(z|y) p(x|z); while training with ``balance`` λ > 0 also the factor λ · B · H(q̄(y))."""
        if x is not None and self.training and self.config.balance > 0:
            pyro.factor("y_balance", self.config.balance * x.shape[0] * self.marginal_entropy(x))
        return super().model(x, y, num_samples)

    def marginal_entropy(self, x: Tensor) -> Tensor:
        """H(q̄(y)) = −Σ_k q̄_k log q̄_k of the batch marginal q̄(y) = (1/B) Σ_b q(y|x_b)."""
        return batch_marginal_entropy(self.classifier(x).softmax(-1))

    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """q(y|x) q(z|x,y); y enumerated (each component weighted by q(y|x)), z = μ(x,y) + σ(x,y) ⊙ ε."""
        pyro.module("vae", self)
        with pyro.plate("data", x.shape[0]):
            k = pyro.sample("y", dist.Categorical(logits=self.classifier(x)), infer={"enumerate": "parallel"})
            loc, scale = self.encode_given(x, k)
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def encode_given(self, x: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z|x, y=k), broadcast over k's shape (e.g. ``(K, 1)`` enumerated)."""
        lead = torch.broadcast_shapes(k.shape, x.shape[:1])
        c = F.one_hot(k, self.num_components).to(x.dtype).expand(*lead, self.num_components)
        return self.encoder(x.expand(*lead, *x.shape[1:]), c)

    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z|x) = Σ_k q(k|x) q(z|x,k) (a mixture: its first two moments)."""
        probs = self.classifier(x).softmax(-1).T.unsqueeze(-1)  # (K, B, 1)
        loc, scale = self.encode_given(x, torch.arange(self.num_components, device=x.device).unsqueeze(-1))
        mean = (probs * loc).sum(0)
        var = (probs * (scale ** 2 + loc ** 2)).sum(0) - mean ** 2
        return mean, var.clamp_min(1e-12).sqrt()

    @torch.no_grad()
    def cluster_probs(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """q(y = k | x), shape ``(B, K)``: the clustering (y, the labels, is ignored)."""
        return self.classifier(x).softmax(-1)
