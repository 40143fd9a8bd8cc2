"""VaDE's initialisation of a Gaussian-mixture prior, shared by VaDE and the GMVAE.

A pretraining phase (an autoencoder, a denoising autoencoder, or a VAE with a N(0, I) prior;
``pretrain.epochs``) trains the encoder and decoder; then scikit-learn's ``GaussianMixture`` (diagonal
covariances) fitted to the pretrained latent means of the training set sets π, μ_c, σ_c of the prior
(``pretrain.init: codes``), or k-means on the training inputs themselves groups the points and each group's
latent means set them (``pretrain.init: inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Tuple

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import kl_divergence

from ..config.schema import opt
from ..config.validators import fraction, non_negative, positive
from ..data.dataset import Dataset
from ..priors.gmm import fit_gaussian_mixture, mixture_of_groups
from .autoencoders import check_corruption, corrupt


@dataclass
class PretrainConfig:
    """The pretraining phase before the joint training (its own progress bar; checkpointed and resumable)."""

    epochs: int = opt(10, "pretraining epochs (0: none; the GMM is then fitted to the untrained latent means)",
                      non_negative, "an integer >= 0")
    kind: Literal["autoencoder", "denoising", "vae"] = opt(
        "autoencoder", "autoencoder: maximize log p(x | z = μ(x)); denoising: maximize log p(x | z = μ(x̃)), "
                       "x̃ ~ C(x̃|x) a corrupted x; vae: the ELBO with a N(0, I) prior")
    corruption: Literal["mask", "gaussian", "shift"] = opt(
        "mask", "kind denoising, C(x̃|x): mask: zero a fraction mask_rate of the pixels; gaussian: "
                "x̃ = x + noise·ε; shift: translate each image by up to max_shift pixels along each axis")
    mask_rate: float = opt(0.2, "kind denoising: fraction of each datapoint's entries the mask corruption zeroes",
                           fraction, "a number in (0, 1)")
    noise: float = opt(0.2, "kind denoising: σ of the Gaussian corruption", positive, "a number > 0")
    max_shift: int = opt(1, "kind denoising: the shift corruption's largest translation, in pixels", positive,
                         "an integer >= 1")
    lr: float = opt(1e-3, "Adam learning rate of the pretraining phase", positive, "a number > 0")
    gmm_restarts: int = opt(3, "n_init of the mixture's fit: EM restarts on the latent means (init codes) or "
                               "k-means restarts on the inputs (init inputs); the best kept", positive,
                            "an integer >= 1")
    init: Literal["codes", "inputs"] = opt(
        "codes", "how the mixture starts after pretraining: codes: a GaussianMixture fitted to the latent means; "
                 "inputs: k-means on the training inputs groups the points, π_c, μ_c, σ_c are the moments of each "
                 "group's latent means")


class MixtureInitMixin:
    """Pretraining + GaussianMixture initialisation of a GMM prior, shared by VaDE and the GMVAE.

    Needs ``encoder``, ``decoder``, ``likelihood``, ``prior`` (a gmm) and ``config.pretrain`` (:class:`PretrainConfig`).
    """

    def check_pretraining(self, data_shape: Tuple[int, ...]) -> None:
        """Refuse a pretraining corruption the data cannot take (shift needs images)."""
        if self.config.pretrain.kind == "denoising":
            check_corruption(self.config.pretrain.corruption, data_shape, "model.pretrain.corruption")

    def pretrain_codes(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of the code the pretraining phase trains (VaDE: q(z|x))."""
        return self.encoder(x)

    def pretrain_loss(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """autoencoder: −Σ log p(x | z = μ(x)); denoising: −Σ log p(x | z = μ(x̃)), x̃ ~ C(x̃|x) (the denoising
        autoencoder's corruption); vae: −Σ ELBO with p(z) = N(0, I) (one reparameterized z)."""
        pretrain = self.config.pretrain
        if pretrain.kind == "denoising":
            x_in = corrupt(x, pretrain.corruption, pretrain.noise, pretrain.mask_rate, pretrain.max_shift)
        else:
            x_in = x
        loc, scale = self.pretrain_codes(x_in)
        if pretrain.kind != "vae":
            z, kl = loc, 0.0
        else:
            z = loc + scale * torch.randn_like(loc)
            kl = kl_divergence(dist.Normal(loc, scale), dist.Normal(torch.zeros_like(loc), 1.0)).sum(-1)
        return -(self.likelihood.distribution(self.decoder(z)).log_prob(x) - kl).sum()

    def end_pretraining(self, data: Dataset, seed: int) -> None:
        """Set π, μ, σ from the latent means of the training set: a ``GaussianMixture(K, covariance_type="diag")``
        fitted to them (init codes), or their moments within each k-means cluster of the inputs (init inputs)."""
        if data.in_memory:  # the pixels as stored (dynamically binarized data: their expected value)
            x = data.tensors("train")[0]
        else:  # streamed: one pass of its batches
            x = torch.cat([xb for xb, _ in data.batches("train", 1000)])
        means = torch.cat([self.pretrain_codes(x[i:i + 1000])[0] for i in range(0, x.shape[0], 1000)])
        k, restarts = self.prior.config.num_components, self.config.pretrain.gmm_restarts
        if self.config.pretrain.init == "inputs":
            from sklearn.cluster import KMeans

            labels = KMeans(k, n_init=restarts, random_state=seed).fit_predict(x.flatten(1).double().cpu().numpy())
            self.prior.set_components(*mixture_of_groups(means, torch.as_tensor(labels, device=means.device), k))
        else:
            self.prior.set_components(*fit_gaussian_mixture(means, k, seed, restarts))
        self.after_mixture_fit(x, means, seed)

    def after_mixture_fit(self, x: Tensor, means: Tensor, seed: int) -> None:
        """Hook after the prior is set (the GMVAE fits its cluster guide q(y|x) here)."""
