"""Inference: objectives (Pyro ELBOs by name) and vectorized importance weights."""

from ..registry import OBJECTIVES
from .importance import LogWeights, log_weights
from .objectives import ELBO, EnumELBO, MeanFieldELBO, build_elbo

__all__ = ["OBJECTIVES", "ELBO", "EnumELBO", "LogWeights", "MeanFieldELBO", "build_elbo", "log_weights"]
