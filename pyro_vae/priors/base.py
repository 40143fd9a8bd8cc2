"""The prior interface: a module that emits the ``z`` site inside the model's data plate."""

from __future__ import annotations

from typing import Optional, Tuple

import pyro
from pyro.distributions import TorchDistribution
from torch import Tensor, nn


class Prior(nn.Module):
    """p(z) (or p(z|c)): subclasses give :meth:`distribution`, the marginal density of ``z``.

    :meth:`forward` is what the model calls inside ``pyro.plate("data")``; a prior with discrete
    structure (e.g. an explicit mixture component ``y``) overrides it to emit extra sites first.
    """

    enumerated_sites: Tuple[str, ...] = ()  # discrete sites summed out by TraceEnum_ELBO (objective: enum)

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def distribution(self, context: Optional[Tensor] = None) -> TorchDistribution:
        """The distribution of ``z`` with ``event_shape == (latent_dim,)``."""
        raise NotImplementedError

    def forward(self, context: Optional[Tensor] = None) -> Tensor:
        """Sample site ``z``: ``z ~ p(z | context)``."""
        return pyro.sample("z", self.distribution(context))

    def log_prob(self, z: Tensor, context: Optional[Tensor] = None) -> Tensor:
        """log p(z) summed over the latent dims, shape ``z.shape[:-1]``."""
        return self.distribution(context).log_prob(z)
