"""VaDE (Jiang et al. 2017): a VAE with a Gaussian-mixture prior, initialised so that it clusters.

    model:  c ~ Cat(π),  z ~ N(μ_c, diag σ_c²),  x ~ p(x|z)        (c summed out: p(z) = Σ_c π_c N(z; μ_c, σ_c))
    guide:  z ~ q(z|x) = N(μ(x), diag σ²(x))
    clusters: q(c|x) = p(c | z = μ(x)) = π_c N(μ(x); μ_c, σ_c) / Σ_j π_j N(μ(x); μ_j, σ_j)

With q(c|x) = p(c|z) the VaDE ELBO E_q[log p(x|z) + Σ_c q(c|x)(log π_c N(z; μ_c, σ_c) − log q(c|x)) − log q(z|x)]
equals E_q(z|x)[log p(x|z) + log Σ_c π_c N(z; μ_c, σ_c) − log q(z|x)]: the GMM prior with c marginalized
(``prior.form: marginal``, Trace_ELBO) or enumerated on the model side (``form: enumerate``, TraceEnum_ELBO).
What makes it cluster is the initialisation: a pretraining phase (an autoencoder, or a VAE with a N(0, I)
prior; ``pretrain.epochs``), then scikit-learn's ``GaussianMixture`` (diagonal covariances) fitted to the
pretrained latent means of the training set sets π, μ_c, σ_c before the joint training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from ..config.schema import component, opt
from ..config.validators import positive
from ..errors import ConfigError
from ..registry import MODELS, PRIORS
from .mixture_init import MixtureInitMixin, PretrainConfig
from .vae import VAE, VAEConfig


def _marginal_gmm() -> Any:
    return PRIORS.get("gmm").config_cls(form="marginal")


@dataclass
class VaDEConfig(VAEConfig):
    type: str = "vade"
    latent_dim: int = opt(10, "dimension of z", positive, "an integer >= 1")
    prior: Any = component(PRIORS, _marginal_gmm, "p(c) p(z|c): a gmm prior (form marginal or enumerate)")
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


@MODELS.register("vade", VaDEConfig)
class VaDE(MixtureInitMixin, VAE):
    """VaDE: GMM prior, Gaussian guide q(z|x), clusters q(c|x) = p(c|z=μ(x)); pretraining + GMM initialisation."""

    def __init__(self, config: VaDEConfig, data_shape: Tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__(config, data_shape, num_classes)
        self.check_pretraining(self.data_shape)
        self.num_components = config.prior.num_components
        self.pretrain_epochs, self.pretrain_lr = config.pretrain.epochs, config.pretrain.lr

    @classmethod
    def check_config(cls, config: VaDEConfig) -> None:
        if config.prior.type != "gmm":
            raise ConfigError(f"model.prior.type: vade needs a 'gmm' prior (its components are the clusters), "
                              f"got {config.prior.type!r}")
        super().check_config(config)

    @torch.no_grad()
    def cluster_probs(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """q(c = k | x) = p(c = k | z = μ(x)), shape ``(B, K)`` (y, the labels, is ignored)."""
        return self.prior.responsibilities(self.encode(x)[0])
