"""The model contract: what training, run folders, evaluation and pictures rely on.

A model is an ``nn.Module`` holding a Pyro program pair::

    model(x=None, y=None, num_samples=1)   # p(latents) p(x | latents); sample site "x" observed when x is given
    guide(x, y=None, num_samples=1)        # q(latents | x); the same latent site names as the model

Both put their per-datapoint sites inside ``pyro.plate("data")`` (``max_plate_nesting`` = 1). ``y``
is the optional side information of a datapoint (a label, a covariate vector); a model that ignores it
accepts it all the same. Any such module trains with every engine and objective, checkpoints, resumes
and gets the importance-sampled log p(x) = log E_q[p(x, z)/q(z|x)] from evaluation.

Capabilities are declared by type, not probed:

* :class:`GenerativeModel` — the contract above, plus ``generate`` and ``reconstruct`` for pictures,
  ``pictures`` for extra run-folder grids, and the declared attributes ``point_estimate``,
  ``label_conditional`` and ``enumerated_sites``, and ``discrete_levels`` and ``scored_dims`` for bits/dim;
  :meth:`GenerativeModel.check_config` holds the rules between the model's config sections (checked before
  any data is read, and again when it is built).
* :class:`LatentModel` — also ``encode(x, y) -> (loc, scale)``, ``decode(z, y) -> E[x|z]`` and a
  :class:`~pyro_vae.priors.base.Prior` ``prior``: latent pictures, traversals, active units and the KL split.
* :class:`Clusterer` — also ``cluster_probs(x, y) -> (B, K)``: clustering metrics.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Protocol, Tuple, runtime_checkable

from torch import Tensor, nn

from ..likelihoods.base import Likelihood
from ..priors.base import Prior

Grids = Dict[str, Tuple[Tensor, int]]  # picture file name -> (images, images per row)


class GenerativeModel(nn.Module):
    """Base class of every model: a Pyro ``model``/``guide`` pair over a datapoint of ``data_shape``.

    Subclasses set ``data_shape`` (a datapoint's shape) and ``num_classes`` (labels, 0 if none) in
    ``__init__`` and implement :meth:`model` and :meth:`guide`.
    """

    data_shape: Tuple[int, ...]
    num_classes: int = 0
    max_plate_nesting: int = 1
    #: discrete latent sites marked ``infer={"enumerate": "parallel"}``: they need ``train.objective: enum``
    enumerated_sites: Tuple[str, ...] = ()
    #: the guide is a point mass (Delta): its "ELBO" is a MAP objective, not a bound on log p(x)
    point_estimate: bool = False
    #: learns from partly labelled data (``data.labeled``: batches carry y = −1 where a label is hidden)
    partial_labels: bool = False
    #: ``generate(n, y)`` draws datapoints of class ``y`` (the condition is the label)
    label_conditional: bool = False
    #: width C of the covariate vector c the model is conditioned on (``generate(n, c)``); 0: no covariates
    covariate_dim: int = 0

    @property
    def discrete_levels(self) -> Optional[int]:
        """L when log p(x|latents) is a log-probability mass on L grey levels per scored dimension (evaluation then
        reports bits/dim); None for a density."""
        return None

    def data_likelihood(self) -> Optional[Likelihood]:
        """The :class:`~pyro_vae.likelihoods.base.Likelihood` p(x|latents) of site ``x`` (training checks the data
        against its support first); None when the model scores x otherwise (it then checks its data itself)."""
        return None

    def scored_dims(self) -> int:
        """D, the data dimensions site ``x`` scores (bits/dim = −log p(x) / (D ln 2)); all of ``data_shape`` here."""
        return math.prod(self.data_shape)

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Raise :class:`~pyro_vae.errors.ConfigError` naming the keys when the options of ``config`` (this
        model's config) do not fit together; called before any data is read and when the model is built."""

    @classmethod
    def guide_family_for(cls, config: Any) -> Optional[type]:
        """The :class:`~pyro_vae.guides.base.Guide` class a model built from ``config`` draws z from (None: the
        model's own guide)."""
        return None

    @classmethod
    def enumerated_sites_for(cls, config: Any) -> Tuple[str, ...]:
        """The ``enumerated_sites`` a model built from ``config`` will have (checked before any data is read)."""
        return cls.enumerated_sites

    def model(self, x: Optional[Tensor] = None, y: Optional[Tensor] = None, num_samples: int = 1) -> Tensor:
        """p(latents) p(x | latents); with ``x=None`` draws ``num_samples`` datapoints."""
        raise NotImplementedError

    def guide(self, x: Tensor, y: Optional[Tensor] = None, num_samples: int = 1) -> Optional[Tensor]:
        """q(latents | x): the variational posterior, with the model's latent site names."""
        raise NotImplementedError

    def generate(self, num_samples: int, y: Optional[Tensor] = None) -> Tensor:
        """E[x | latents] for ``num_samples`` draws from the prior (pictures); NotImplementedError if none."""
        raise NotImplementedError(f"{type(self).__name__} does not generate samples")

    def reconstruct(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x | latents = the guide's point estimate for x] (pictures); NotImplementedError if none."""
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct")

    def pictures(self, x: Tensor, y: Tensor, per_row: int = 8) -> Grids:
        """Extra pictures for the run folder, ``{file name: (images, per row)}``, from test data (x, y)."""
        return {}


class LatentModel(GenerativeModel):
    """A model with one continuous latent ``z`` of width ``latent_dim``, its prior and an amortized encoder."""

    latent_dim: int
    prior: Prior
    #: width of the condition c the encoder and p(z|c) read (0: an unconditional model)
    cond_dim: int = 0
    #: q(z|x) is the Gaussian N(encode(x)) (not, e.g., a mixture over a discrete latent)
    gaussian_posterior: bool = True

    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of q(z|x), each ``(B, latent_dim)``."""
        raise NotImplementedError

    def decode(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """E[x|z] for latents ``(..., latent_dim)``."""
        raise NotImplementedError


def data_likelihood(model: nn.Module) -> Optional[Likelihood]:
    """``model.data_likelihood()`` for a :class:`GenerativeModel`; None for any other module."""
    return model.data_likelihood() if isinstance(model, GenerativeModel) else None


@runtime_checkable
class Clusterer(Protocol):
    """A model that assigns datapoints to K clusters (a mixture prior, a cluster guide q(y|x))."""

    def cluster_probs(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """Cluster probabilities, shape ``(B, K)``."""
        ...
