"""Priors p(z), registered by name (``model.prior.type``)."""

from ..registry import PRIORS
from . import normal  # noqa: F401  (register the priors)
from . import conditional  # noqa: F401  (p(z|c) of the conditional VAE)
from . import flow, gmm, laplace, vamp  # noqa: F401  (mixture, VampPrior, flow and Laplace priors)
from . import flat  # noqa: F401  (improper flat prior of the plain autoencoder)
from .base import ConditionalPrior, EncoderPrior, ImproperPrior, MixturePrior, Prior, build_prior

__all__ = ["PRIORS", "ConditionalPrior", "EncoderPrior", "ImproperPrior", "MixturePrior", "Prior", "build_prior"]
