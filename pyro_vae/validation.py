"""Cross-section rules of a run config, checked before any data is read or any model is built.

Each section parses on its own (:func:`pyro_vae.config.schema.from_dict`); what ties sections together
is declared by the components themselves and gathered here:

* the model's own rules (:meth:`~pyro_vae.models.base.GenerativeModel.check_config`): gmvae needs the gmm
  prior with ``form: enumerate``; a learned p(z|c) needs a conditional model; the contractive penalty's
  ``closed_form`` needs a one-hidden-layer mlp;
* prior form ⇔ objective: enumerated discrete sites (``model.prior.form: enumerate``, ``model.type: gmvae``)
  need ``train.objective.type: enum``;
* a table's ``model.likelihood.type: columns`` with a plain VAE only; ``data.missing: mask`` needs it;
* objective ⇔ engine and guide: ``train.objective.estimator: dreg`` needs the torch engine (``train.engine`` torch
  or auto) and a guide whose density can be evaluated at stop-gradient parameters (not a flow).
"""

from __future__ import annotations

from .config.run import RunConfig
from .infer.objectives import check_enumerated, check_estimator
from .likelihoods.columns import check_columns
from .models.base import GenerativeModel
from .registry import MODELS


def validate(config: RunConfig) -> None:
    """Raise :class:`~pyro_vae.errors.ConfigError` naming the keys when the sections of ``config`` do not fit."""
    model: type[GenerativeModel] = MODELS.get(config.model.type, key="model.type").cls
    check_columns(config)  # a table's per-column likelihood: plain VAE only; data.missing: mask needs it
    model.check_config(config.model)
    check_enumerated(model.enumerated_sites_for(config.model), config.train.objective)
    check_estimator(config.train.engine, config.train.objective, model.guide_family_for(config.model))
