"""Likelihoods p(x|z), registered by name (``model.likelihood.type``)."""

from ..registry import LIKELIHOODS
from . import bernoulli, gaussian  # noqa: F401  (register the likelihoods)
from . import categorical, continuous_bernoulli, discretized_logistic, laplace  # noqa: F401
from . import negative_binomial, poisson  # noqa: F401  (counts)
from .base import Likelihood

__all__ = ["LIKELIHOODS", "Likelihood"]
