"""A normalizing-flow prior: z = f_L ∘ … ∘ f_1(ε), ε ~ N(0, I), from Pyro's autoregressive transforms.

Like the VampPrior's, its ELBO is unchanged by an affine map of the latent space z ↦ a ⊙ z + c (the flow's
shifts and scales absorb it, the decoder's first layer undoes it), so nothing in the ELBO pins where the codes
sit. With tanh networks they drift away from the origin within the first epoch and saturate the decoder;
the training-only gauge term on the batch's codes pins them (see docs/priors.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Literal, Optional

import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions import transforms as T
from torch import Tensor, nn

from ..config.schema import opt, positive
from ..config.validators import non_negative
from ..registry import PRIORS
from .base import Prior, moments_penalty


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
    gauge: float = opt(1.0, "weight λ of the training-only gauge term λ/2·(‖m‖² + Σ_d log² v_d) on the mean m and "
                            "variances v of the batch's codes z (the aggregate posterior, which the flow models): "
                            "pins the latent origin and scale the ELBO leaves free; 0 turns it off. Not part of "
                            "any reported held-out number", non_negative, "a number >= 0")


@PRIORS.register("flow", FlowPriorConfig)
class FlowPrior(Prior):
    """Flow prior: log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z|, f a stack of autoregressive transforms."""

    penalty_site = "z_gauge"

    def __init__(self, config: FlowPriorConfig, latent_dim: int) -> None:
        super().__init__(latent_dim)
        self.gauge = config.gauge
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

    def penalty(self, z: Optional[Tensor] = None) -> Optional[Tensor]:
        """The gauge term :func:`~pyro_vae.priors.base.moments_penalty` of the batch's codes (every particle's):
        their mean and (biased) variances per dim; None when ``gauge`` is 0 or fewer than two codes."""
        if self.gauge <= 0 or z is None:
            return None
        codes = z.reshape(-1, z.shape[-1])
        if codes.shape[0] < 2:
            return None
        return moments_penalty(codes.mean(0), codes.var(0, unbiased=False), self.gauge)
