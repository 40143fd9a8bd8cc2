"""Likelihoods p(x|z), registered by name (``model.likelihood.type``)."""

from ..registry import LIKELIHOODS
from . import bernoulli, gaussian  # noqa: F401  (register the likelihoods)
from . import categorical, continuous_bernoulli, discretized_logistic, laplace  # noqa: F401
from . import negative_binomial, poisson  # noqa: F401  (counts)
from . import columns  # noqa: F401  (a table: one family per column)
from .base import Likelihood


def pointwise_likelihoods() -> list:
    """Names of the likelihoods that apply to data of any shape: every one but those that need a table's
    columns (``needs_columns``)."""
    return [name for name in LIKELIHOODS.names() if not getattr(LIKELIHOODS.get(name).cls, "needs_columns", False)]


__all__ = ["LIKELIHOODS", "Likelihood", "pointwise_likelihoods"]
