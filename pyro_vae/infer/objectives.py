"""Variational objectives, registered by name (``train.objective.type``); each builds a Pyro ELBO."""

from __future__ import annotations

from dataclasses import dataclass

import pyro.infer

from ..config.schema import opt, positive
from ..registry import OBJECTIVES


@dataclass
class ParticlesConfig:
    """Options shared by Monte-Carlo objectives."""

    num_particles: int = opt(1, "samples m of z per x", positive, "an integer >= 1")
    vectorize_particles: bool = opt(True, "draw the m particles in one vectorized pass")


@dataclass
class ELBOConfig(ParticlesConfig):
    type: str = "elbo"


@dataclass
class MeanFieldConfig(ParticlesConfig):
    type: str = "meanfield"


@dataclass
class EnumConfig(ParticlesConfig):
    type: str = "enum"


class Objective:
    """Wraps a Pyro ELBO class: ``build(max_plate_nesting)`` returns the configured instance."""

    elbo_cls: type = pyro.infer.Trace_ELBO

    def __init__(self, config: ParticlesConfig) -> None:
        self.config = config

    def build(self, max_plate_nesting: int) -> pyro.infer.ELBO:
        return self.elbo_cls(
            num_particles=self.config.num_particles,
            vectorize_particles=self.config.vectorize_particles,
            max_plate_nesting=max_plate_nesting,
        )


@OBJECTIVES.register("elbo", ELBOConfig)
class ELBO(Objective):
    """Trace_ELBO: E_q[log p(x,z) − log q(z|x)], estimated with m reparameterized samples."""

    elbo_cls = pyro.infer.Trace_ELBO


@OBJECTIVES.register("meanfield", MeanFieldConfig)
class MeanFieldELBO(Objective):
    """TraceMeanField_ELBO: E_q[log p(x|z)] − KL(q(z|x)‖p(z)), the KL in closed form where it exists."""

    elbo_cls = pyro.infer.TraceMeanField_ELBO


@OBJECTIVES.register("enum", EnumConfig)
class EnumELBO(Objective):
    """TraceEnum_ELBO: discrete sites marked ``enumerate="parallel"`` are summed out exactly."""

    elbo_cls = pyro.infer.TraceEnum_ELBO


def build_elbo(config, max_plate_nesting: int) -> pyro.infer.ELBO:
    """The Pyro ELBO for objective config ``config``."""
    return OBJECTIVES.build(config).build(max_plate_nesting)
