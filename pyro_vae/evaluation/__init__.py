"""Evaluation: held-out bounds and diagnostics of a trained model."""

from .active_units import ActiveUnits, active_units
from .bounds import elbo_and_iwae, test_elbo
from .decomposition import KLSplit, analytic_kl, elbo_parts, kl_split
from .loglik import LogLikelihood, linear_gaussian_log_marginal, log_likelihood_batch, test_log_likelihood
from .report import evaluate, interpolation_images, traversal_images

__all__ = ["ActiveUnits", "KLSplit", "LogLikelihood", "active_units", "analytic_kl", "elbo_and_iwae", "elbo_parts",
           "evaluate", "interpolation_images", "kl_split", "linear_gaussian_log_marginal", "log_likelihood_batch",
           "test_elbo", "test_log_likelihood", "traversal_images"]
