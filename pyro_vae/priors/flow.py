"""A normalizing-flow prior: z = f_L ∘ … ∘ f_1(ε), ε ~ N(0, I), from Pyro's autoregressive transforms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Literal, Optional

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions import transforms as T
from torch import Tensor, nn

from ..config.schema import opt, positive
from ..registry import PRIORS
from .base import Prior


class Reverse(T.Transform):
    """y = (x_D, …, x_1), log |det| = 0: Pyro's ``Permute`` with the reversal, as a flip (no index tensor)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reverse)

    def _call(self, x: Tensor) -> Tensor:
        return x.flip(-1)

    def _inverse(self, y: Tensor) -> Tensor:
        return y.flip(-1)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return x.new_zeros(x.shape[:-1])


#: ``transform`` option → the Pyro transform factory it names
TRANSFORMS = {"affine_autoregressive": T.affine_autoregressive, "spline_autoregressive": T.spline_autoregressive}


@dataclass
class FlowPriorConfig:
    type: str = "flow"
    transform: Literal["affine_autoregressive", "spline_autoregressive"] = opt(
        "affine_autoregressive", "Pyro transform per layer (MAF-style affine, or rational-quadratic spline)")
    num_layers: int = opt(2, "number of flow layers (dims are reversed between layers)", positive, "an integer >= 1")
    hidden_dims: List[int] = opt([64, 64], "hidden widths of each layer's autoregressive network")


@PRIORS.register("flow", FlowPriorConfig)
class FlowPrior(Prior):
    """Flow prior: log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z|, f a stack of autoregressive transforms."""

    def __init__(self, config: FlowPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))
        make = TRANSFORMS[config.transform]
        # Each autoregressive transform is used inverted (MAF direction): log p(z) needs f⁻¹, one network pass
        # per layer; sampling z = f(ε) is sequential over the dims, which only pictures need.
        self.transforms = nn.ModuleList(make(latent_dim, hidden_dims=list(config.hidden_dims))
                                        for _ in range(config.num_layers))
        reverse = Reverse()
        self._chain: List[T.Transform] = []
        for i, t in enumerate(self.transforms):
            self._chain += ([reverse] if i > 0 and latent_dim > 1 else []) + [t.inv]

    def distribution(self, context: Optional[Tensor] = None) -> dist.TorchDistribution:
        base = dist.Normal(self.loc, self.scale).to_event(1)
        return dist.TransformedDistribution(base, self._chain)
