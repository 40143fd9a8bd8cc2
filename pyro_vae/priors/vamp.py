"""The VampPrior p(z) = (1/K) Σ_k q(z | u_k): the encoder's posteriors at K learnable pseudo-inputs u_k.

Its ELBO is unchanged by an affine map of the latent space, z ↦ a ⊙ z + c, applied to the encoder's outputs
(μ ↦ a ⊙ μ + c, σ ↦ |a| ⊙ σ) and undone by the decoder's first linear layer: the prior moves with the encoder,
so log p(z) − log q(z|x) keeps its value. Nothing in the ELBO pins this gauge; :func:`gauge_penalty` does,
during training only (see docs/priors.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Tuple

import torch
from torch import Tensor, nn

from ..config.schema import opt, positive
from ..errors import ConfigError
from ..registry import PRIORS
from .base import EncoderPrior, MixturePrior, moments_penalty


@dataclass
class VampPriorConfig:
    type: str = "vamp"
    num_components: int = opt(50, "number K of pseudo-inputs", positive, "an integer >= 1")
    pseudo_inputs: Literal["sigmoid", "hardtanh"] = opt(
        "sigmoid", "u_k = sigmoid(a_k), starting at sigmoid(init_std · N(0, 1)) ≈ 0.5 grey; or u_k = hardtanh(a_k) = "
                   "clamp(a_k, 0, 1) as in the VampPrior paper, starting at a_k = w_k + b with w_k, b ~ U(±1/√K) "
                   "(pythae's start: dark, varied images; escapes posterior collapse sooner with tanh networks)")
    init_std: float = opt(0.1, "spread of the sigmoid pseudo-inputs' start: a_k = init_std · N(0, 1) (seeded)",
                          positive, "a number > 0")
    gauge: float = opt(1.0, "weight λ of the training-only gauge term λ/2·(‖m‖² + Σ_d log² v_d) on the mixture's "
                            "mean m and variances v (pins the latent scale and origin the ELBO leaves free; keeps "
                            "tanh networks out of posterior collapse); 0 turns it off. Not part of any reported "
                            "held-out number", lambda x: x is not None and x >= 0, "a number >= 0")


def mixture_moments(weights: Tensor, locs: Tensor, scales: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean m = Σ_k π_k μ_k and variances v = Σ_k π_k (σ_k² + (μ_k − m)²) of Σ_k π_k N(μ_k, diag σ_k²)."""
    w = weights.unsqueeze(-1)
    mean = (w * locs).sum(0)
    return mean, (w * (scales ** 2 + (locs - mean) ** 2)).sum(0)


def gauge_penalty(weights: Tensor, locs: Tensor, scales: Tensor, strength: float) -> Tensor:
    """λ/2·(‖m‖² + Σ_d log² v_d) for the mixture's :func:`mixture_moments` m, v. Zero exactly when the mixture
    has mean 0 and unit variances; under z ↦ a ⊙ z + c, m ↦ a ⊙ m + c and v ↦ a² v, so each gauge orbit holds
    one zero."""
    return moments_penalty(*mixture_moments(weights, locs, scales), strength)


@PRIORS.register("vamp", VampPriorConfig)
class VampPrior(MixturePrior, EncoderPrior):
    """VampPrior (1/K) Σ_k q(z|u_k) with K learnable pseudo-inputs u_k = sigmoid(a_k) or hardtanh(a_k) through the
    encoder.

    It needs the model's encoder: the model calls :meth:`attach` after building it (the encoder is
    held by reference, not as a submodule, so its weights belong to the model only once). q(z|u_k) is the
    encoder's diagonal Gaussian q0 whatever ``model.guide`` is (a proper mixture density for every guide).

    With ``gauge`` > 0, :meth:`penalty` is the training-only term the model adds as the ``pyro.factor`` site
    :attr:`penalty_site` (once per datapoint, in training mode only), so held-out ELBOs and log p(x) never
    include it.
    """

    penalty_site = "z_gauge"

    def __init__(self, config: VampPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.config = config
        self._encode: Optional[Callable[[Tensor], Tuple[Tensor, Tensor]]] = None
        self.data_shape: Optional[Tuple[int, ...]] = None

    def attach(self, encoder: nn.Module, data_shape: Tuple[int, ...]) -> None:
        """Give the prior the encoder x -> (μ, σ) whose posteriors it mixes, and the data shape of u_k."""
        self.__dict__["_encode"] = encoder  # a plain reference: not registered as a submodule
        self.data_shape = tuple(data_shape)
        k, generator = self.config.num_components, torch.Generator().manual_seed(self.config.num_components)
        if self.config.pseudo_inputs == "hardtanh":  # a linear layer on one-hot inputs, as the paper's code
            bound = 1 / math.sqrt(k)
            start = (2 * torch.rand(k, *self.data_shape, generator=generator) - 1) * bound \
                + (2 * torch.rand(1, *self.data_shape, generator=generator) - 1) * bound
        else:
            start = self.config.init_std * torch.randn(k, *self.data_shape, generator=generator)
        self.pseudo_logits = nn.Parameter(start)  # a_k (the name kept from the sigmoid form for old checkpoints)

    def pseudo_inputs(self) -> Tensor:
        """The K pseudo-inputs u_k in [0, 1], shape ``(K, *data_shape)``."""
        if self.config.pseudo_inputs == "hardtanh":
            return self.pseudo_logits.clamp(0.0, 1.0)
        return torch.sigmoid(self.pseudo_logits)

    def components(self) -> Tuple[Tensor, Tensor, Tensor]:
        if self._encode is None:
            raise ConfigError("model.prior.type: vamp needs the model's encoder (a model that calls prior.attach)")
        locs, scales = self._encode(self.pseudo_inputs())
        k = locs.shape[0]
        return locs.new_full((k,), 1.0 / k), locs, scales

    def penalty(self, z: Optional[Tensor] = None) -> Optional[Tensor]:
        """The gauge term :func:`gauge_penalty` of the current mixture (None when ``gauge`` is 0); ``z`` unused."""
        return gauge_penalty(*self.components(), self.config.gauge) if self.config.gauge > 0 else None
