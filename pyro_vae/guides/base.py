"""The guide contract: a family q(z|x) on the encoder's (μ(x), σ(x)) and, where it needs them, its features h(x).

* :class:`Guide` — ``guide(encoder, x, c)`` is the distribution of the guide's site ``z`` (event shape
  ``(latent_dim,)``, batch shape ``(B,)``); a family gives :meth:`Guide.distribution` of (μ, σ, h).
* ``needs_features`` — the family reads h(x, c) (an extra head, a flow's context): the network's encoder must
  be a :class:`~pyro_vae.nets.base.Encoder`, which exposes ``features`` and ``head``.
* ``diagonal_gaussian`` — q(z|x) is N(μ(x), diag σ²(x)) itself: closed-form KL splits and Gaussian pictures hold.
* ``detachable_density`` — log q(z|x) can be evaluated at stop-gradient parameters (DReG gradients need it).

The encoder's (μ, σ) stay what ``model.encode(x)`` returns for pictures: the mean of q for the diagonal and
the full-covariance families, the base distribution q0 of a flow.
"""

from __future__ import annotations

from typing import Any, Optional

from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..errors import ConfigError
from ..nets.base import Encoder
from ..registry import GUIDES


class Guide(nn.Module):
    """q(z|x): a posterior family on top of the encoder; built as ``cls(config, latent_dim, feature_dim)``."""

    #: q(z|x) is the encoder's N(μ(x), diag σ²(x)) itself
    diagonal_gaussian: bool = False
    #: reads the encoder's features h(x, c) (needs a :class:`~pyro_vae.nets.base.Encoder`)
    needs_features: bool = True
    #: log q(z; sg(params)) is at hand (a Normal or MultivariateNormal site), as the DReG estimator needs
    detachable_density: bool = True

    def __init__(self, latent_dim: int, feature_dim: int = 0) -> None:
        super().__init__()
        self.latent_dim, self.feature_dim = latent_dim, feature_dim

    @classmethod
    def check_config(cls, config: Any, latent_dim: int) -> None:
        """Raise :class:`~pyro_vae.errors.ConfigError` naming the ``model.guide`` key when ``config`` cannot
        build this family for ``latent_dim`` (checked before any data is read)."""

    def distribution(self, loc: Tensor, scale: Tensor, h: Optional[Tensor]) -> TorchDistribution:
        """q(z|x) from the encoder's μ, σ (each ``(B, latent_dim)``) and features h (None unless
        ``needs_features``)."""
        raise NotImplementedError

    def forward(self, encoder: nn.Module, x: Tensor, c: Optional[Tensor] = None) -> TorchDistribution:
        """q(z|x, c) for the encoder's reading of (x, c)."""
        if not self.needs_features:
            loc, scale = encoder(x, c)
            return self.distribution(loc, scale, None)
        assert isinstance(encoder, Encoder)  # build_guide checked it
        h = encoder.features(x, c)
        loc, scale = encoder.head(h)
        return self.distribution(loc, scale, h)


def build_guide(config: Any, latent_dim: int, encoder: nn.Module) -> Guide:
    """The guide family named by ``config.type`` on top of ``encoder``."""
    cls = GUIDES.get(config.type, key="model.guide.type").cls
    cls.check_config(config, latent_dim)
    if cls.needs_features and not isinstance(encoder, Encoder):
        raise ConfigError(f"model.guide.type: {config.type} reads the encoder's features h(x), but the encoder "
                          f"{type(encoder).__name__} does not expose them; expected a pyro_vae.nets.Encoder "
                          "(model.network.type mlp, conv or linear)")
    feature_dim = encoder.feature_dim if isinstance(encoder, Encoder) else 0
    return cls(config, latent_dim, feature_dim)
