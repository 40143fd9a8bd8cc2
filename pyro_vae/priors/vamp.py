"""The VampPrior p(z) = (1/K) Σ_k q(z | u_k): the encoder's posteriors at K learnable pseudo-inputs u_k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from ..config.schema import opt, positive
from ..errors import ConfigError
from ..registry import PRIORS
from .base import EncoderPrior, MixturePrior


@dataclass
class VampPriorConfig:
    type: str = "vamp"
    num_components: int = opt(50, "number K of pseudo-inputs", positive, "an integer >= 1")
    init_std: float = opt(0.1, "pseudo-inputs start at sigmoid(init_std · N(0, 1)) ≈ 0.5 grey (seeded)",
                          positive, "a number > 0")


@PRIORS.register("vamp", VampPriorConfig)
class VampPrior(MixturePrior, EncoderPrior):
    """VampPrior (1/K) Σ_k q(z|u_k) with K learnable pseudo-inputs u_k = sigmoid(a_k) through the encoder.

    It needs the model's encoder: the model calls :meth:`attach` after building it (the encoder is
    held by reference, not as a submodule, so its weights belong to the model only once). q(z|u_k) is the
    encoder's diagonal Gaussian q0 whatever ``model.guide`` is (a proper mixture density for every guide).
    """

    def __init__(self, config: VampPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.config = config
        self._encode: Optional[Callable[[Tensor], Tuple[Tensor, Tensor]]] = None
        self.data_shape: Optional[Tuple[int, ...]] = None

    def attach(self, encoder: nn.Module, data_shape: Tuple[int, ...]) -> None:
        """Give the prior the encoder x -> (μ, σ) whose posteriors it mixes, and the data shape of u_k."""
        self.__dict__["_encode"] = encoder  # a plain reference: not registered as a submodule
        self.data_shape = tuple(data_shape)
        generator = torch.Generator().manual_seed(self.config.num_components)
        self.pseudo_logits = nn.Parameter(
            self.config.init_std * torch.randn(self.config.num_components, *self.data_shape, generator=generator))

    def pseudo_inputs(self) -> Tensor:
        """The K pseudo-inputs u_k in [0, 1], shape ``(K, *data_shape)``."""
        return torch.sigmoid(self.pseudo_logits)

    def components(self) -> Tuple[Tensor, Tensor, Tensor]:
        if self._encode is None:
            raise ConfigError("model.prior.type: vamp needs the model's encoder (a model that calls prior.attach)")
        locs, scales = self._encode(self.pseudo_inputs())
        k = locs.shape[0]
        return locs.new_full((k,), 1.0 / k), locs, scales
