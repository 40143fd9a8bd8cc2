"""Inference: objectives (Pyro ELBOs by name) and vectorized importance weights."""

from ..registry import OBJECTIVES
from .importance import LogWeights, log_weights
from .objectives import ELBO, IWAE, EnumELBO, MeanFieldELBO, build_elbo, set_objective_step

__all__ = ["OBJECTIVES", "ELBO", "IWAE", "EnumELBO", "LogWeights", "MeanFieldELBO", "build_elbo", "log_weights",
           "set_objective_step"]
