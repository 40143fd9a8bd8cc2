"""Evaluation: held-out bounds and diagnostics of a trained model."""

from .bounds import elbo_and_iwae, test_elbo

__all__ = ["elbo_and_iwae", "test_elbo"]
