"""The one model body of the VAE, the CVAE, the deterministic baseline and the autoencoder family.

    c ~ condition(x, y)                               # None for an unconditional model
    s ~ prior.sites(c)                                # a prior's own sites (a mixture's component y), if any
    z ~ p(z|s, c)                                     # site "z" (no z in the baseline)
    factor −Ω(θ, z)                                   # site prior.penalty_site, training mode, when prior.penalty(z)
    factor −Ω(x)                                      # site penalty_site, when penalty(x) is not None
    x ~ observed(likelihood(params(z, c)))            # site "x", observed when x is given

all inside ``pyro.plate("data")``. The members differ only in the hooks: :meth:`DecoderModel.condition`
(the CVAE's label or visible quadrants), :meth:`DecoderModel.penalty` (the contractive penalty),
:meth:`DecoderModel.observed` (the quadrant mask: visible pixels leave log p(x|z,c)) and
:meth:`DecoderModel.params` (the decoder; the baseline's has no z). The guide's hooks (what it encodes,
x̃ = corrupt(x), and its family) live with the guide, in :class:`~pyro_vae.models.vae.VAE`.
"""

from __future__ import annotations

from typing import Optional

import pyro
from pyro.distributions import TorchDistribution
from torch import Tensor, nn

from ..likelihoods.base import Likelihood
from ..priors.base import Prior
from .base import GenerativeModel
from .condition import Condition


class DecoderModel(GenerativeModel):
    """x ~ likelihood(decoder(z, c)) with z ~ p(z|c): the shared :meth:`model` (see the module docstring).

    Subclasses set ``likelihood``, ``decoder``, ``prior`` (None: no latent) and ``cond`` (None: no condition)
    in ``__init__`` (as instance attributes: a class-level default would shadow nn.Module's submodules).
    """

    prior: Optional[Prior]
    cond: Optional[Condition]
    likelihood: nn.Module
    decoder: nn.Module
    #: name of the ``pyro.factor`` site carrying −Ω(x) (see :meth:`penalty`)
    penalty_site: str = "penalty"

    def model(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """p(z|c) p(x|z,c) exp(−Ω(x)), c = condition(x, y); with ``x=None`` draws ``num_samples`` datapoints."""
        pyro.module("vae", self)
        c = self.condition(x, y, num_samples)
        size = c.shape[0] if c is not None else x.shape[0] if x is not None else num_samples
        with pyro.plate("data", size):
            z = None
            if self.prior is not None:  # the prior's own sites first (a mixture's component y), then z
                given = {s.name: pyro.sample(s.name, s.distribution, infer=s.infer) for s in self.prior.sites(c)}
                z = pyro.sample("z", self.prior.distribution_given(given, c))
                codes = None if self.point_estimate else z  # draws of the aggregate posterior (none for point codes)
                regularizer = self.prior.penalty(codes) if self.training else None  # a learned prior's gauge term
                if regularizer is not None:
                    pyro.factor(self.prior.penalty_site, -regularizer)
            omega = self.penalty(x) if x is not None else None
            if omega is not None:
                pyro.factor(self.penalty_site, -omega)
            return pyro.sample("x", self.observed(self.likelihood.distribution(self.params(z, c))), obs=x)

    @property
    def discrete_levels(self) -> Optional[int]:  # type: ignore[override]
        """The likelihood's ``levels`` (None: a density)."""
        return self.likelihood.levels if isinstance(self.likelihood, Likelihood) else None

    def data_likelihood(self) -> Optional[Likelihood]:
        return self.likelihood if isinstance(self.likelihood, Likelihood) else None

    def scored_dims(self) -> int:
        """D: the data dimensions site ``x`` scores (with visible quadrants, only the hidden pixels)."""
        return super().scored_dims() - (0 if self.cond is None else self.cond.visible_dims)

    @property
    def label_conditional(self) -> bool:  # type: ignore[override]
        """True when the condition c is the class label (``generate(n, y)`` draws class ``y``)."""
        return self.cond is not None and self.cond.kind == "label"

    @property
    def covariate_dim(self) -> int:
        """Width C of the covariate vector c (``generate(n, c)`` draws at covariates c); 0 if c is not covariates."""
        return self.cond.dim if self.cond is not None and self.cond.kind == "covariates" else 0

    # ---- hooks ----
    def condition(self, x: Optional[Tensor], y: Optional[Tensor] = None, num_samples: int = 1) -> Optional[Tensor]:
        """c = c(x, y), shape ``(B, cond_dim)`` (without data: ``num_samples`` rows); None when unconditional."""
        return None if self.cond is None else self.cond(x, y, num_samples)

    def penalty(self, x: Tensor) -> Optional[Tensor]:
        """Per-datapoint penalty Ω(x) subtracted from log p(x, z), shape ``(B,)``; None for no penalty."""
        return None

    def observed(self, d: TorchDistribution) -> TorchDistribution:
        """p(x|z,c) as scored at site ``x`` (a conditional model masks out the pixels it conditions on)."""
        return d if self.cond is None else self.cond.observed(d)

    def params(self, z: Optional[Tensor], c: Optional[Tensor]) -> Tensor:
        """Likelihood parameters ``(..., B, num_params, *data_shape)`` of p(x|z,c)."""
        return self.decoder(z, c)
