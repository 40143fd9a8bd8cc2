"""Priors p(z), registered by name (``model.prior.type``)."""

from ..registry import PRIORS
from . import normal  # noqa: F401  (register the priors)
from .base import Prior

__all__ = ["PRIORS", "Prior"]
