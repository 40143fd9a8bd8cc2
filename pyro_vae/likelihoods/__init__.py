"""Likelihoods p(x|z), registered by name (``model.likelihood.type``)."""

from ..registry import LIKELIHOODS
from . import bernoulli, gaussian  # noqa: F401  (register the likelihoods)
from .base import Likelihood

__all__ = ["LIKELIHOODS", "Likelihood"]
