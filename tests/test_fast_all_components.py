"""Every registered component trains one step with the default engine, with Pyro's own objective's loss and
gradients: each prior × each likelihood that fits × each network × each model type, then each objective
(β / warm-up / free bits included), then replay (steps 2 and 3) for each component. Combinations that config
validation refuses are skipped, and must be refused with a ConfigError. New registry entries are covered
automatically.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import pyro
import pytest
import torch
from torch import nn

from pyro_vae.config.schema import from_dict
from pyro_vae.errors import ConfigError, DataError
from pyro_vae.infer.objectives import build_elbo
from pyro_vae.likelihoods import pointwise_likelihoods
from pyro_vae.models import build_model
from pyro_vae.registry import LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS
from pyro_vae.train.config import TrainConfig
from pyro_vae.train.factory import build_engine

SHAPE, CLASSES, N, CLIP = (1, 4, 4), 4, 8, 10.0
TINY = {"hidden_dims": [4], "num_components": 2, "channels": [2, 2], "hidden_dim": 4, "classifier_dims": [4],
        "num_layers": 2}  # applied to every component config that has the field


def _tiny(registry: Any, name: str) -> Dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(registry.get(name).config_cls)}
    return {"type": name, **{k: v for k, v in TINY.items() if k in fields}}


def _data() -> Tuple[List[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    grey = torch.randint(0, 256, (N, *SHAPE), generator=g).float() / 255  # 8-bit grey levels in [0, 1]
    y = torch.arange(N) % CLASSES
    return [grey, (grey > 0.5).float(), grey * 2 - 1], y


def _fitting_x(model: nn.Module, candidates: List[torch.Tensor]) -> Optional[torch.Tensor]:
    """The first candidate data in the likelihood's support (None: this likelihood fits none of them)."""
    for x in candidates:
        try:
            model.likelihood.validate(x)
            return x
        except DataError:
            continue
    return None


def _build(model_type: str, prior: Optional[str] = None, likelihood: Optional[str] = None,
           network: Optional[str] = None) -> nn.Module:
    fields = {f.name for f in dataclasses.fields(MODELS.get(model_type).config_cls)}
    cfg: Dict[str, Any] = {"latent_dim": 2} if "latent_dim" in fields else {}
    for key, registry, name in (("prior", PRIORS, prior), ("likelihood", LIKELIHOODS, likelihood),
                                ("network", NETWORKS, network)):
        if key in fields:
            default = getattr(MODELS.get(model_type).config_cls(), key).type
            cfg[key] = _tiny(registry, name or default)
    cfg.update({k: v for k, v in TINY.items() if k in fields})
    pyro.clear_param_store()
    torch.manual_seed(0)
    return build_model(from_dict(MODELS.get(model_type).config_cls, cfg), SHAPE, CLASSES)


def _pyro(model: nn.Module, objective: Any, x, y, seed: int) -> Tuple[float, Optional[List[torch.Tensor]]]:
    """Pyro's own ELBO class for ``objective`` on the same random stream: loss and (clamped) gradients."""
    elbo = build_elbo(objective, model.max_plate_nesting)
    pyro.set_rng_seed(seed)
    if not callable(getattr(elbo, "differentiable_loss", None)):
        return elbo.loss(model.model, model.guide, x, y), None
    loss = elbo.differentiable_loss(model.model, model.guide, x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.item(), [None if g is None else g.clamp(-CLIP, CLIP) for g in grads]


def _assert_step_equals_pyro(model: nn.Module, engine: Any, objective: Any, x, y, seed: int, what: str) -> None:
    expected, grads = _pyro(model, objective, x, y, seed)
    pyro.set_rng_seed(seed)
    got = engine.step(x, y)
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-4), (what, engine.describe())
    if grads is None:  # Pyro's SVI loop (an objective without differentiable_loss): no gradients left to read
        return
    for p, g in zip([p for p in model.parameters() if p.requires_grad], grads):
        if g is None or p.grad is None:
            assert g is None or not g.any(), what
            continue
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-5 * max(1.0, g.abs().max().item())), what


def _objective(model: nn.Module, name: Optional[str] = None, **options) -> Any:
    """The objective config: ``name``, else the default one (enum for a model with enumerated sites)."""
    name = name or ("enum" if getattr(model, "enumerated_sites", ()) else TrainConfig().objective.type)
    return OBJECTIVES.get(name).config_cls(**options)


def _one_step(model_type, prior=None, likelihood=None, network=None, objective=None, options=None, steps=1):
    """Build, then train ``steps`` steps with the default engine, each equal to Pyro's objective; returns the
    engine, or None for a combination config validation refuses (with a ConfigError) or data it cannot fit."""
    what = (model_type, prior, likelihood, network, objective, options)
    try:
        model = _build(model_type, prior, likelihood, network)
        obj = _objective(model, objective, **(options or {}))
        engine = build_engine(model, from_dict(TrainConfig, {"batch_size": N, "objective": dataclasses.asdict(obj)}))
    except ConfigError:
        return None
    candidates, y = _data()
    x = _fitting_x(model, candidates)
    if x is None:
        return None
    with pyro.validation_enabled(False):  # the engine's first step would also run Pyro's validated pass
        for step in range(steps):
            _assert_step_equals_pyro(model, engine, obj, x, y, seed=10 + step, what=(*what, step))
    return engine


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("model_type", MODELS.names())
def test_every_prior_likelihood_network_and_model_one_step(model_type):
    fields = {f.name for f in dataclasses.fields(MODELS.get(model_type).config_cls)}
    priors = PRIORS.names() if "prior" in fields else [None]
    ran, refused = [], []
    for prior in priors:
        for likelihood in pointwise_likelihoods():
            for network in NETWORKS.names():
                engine = _one_step(model_type, prior, likelihood, network)
                (ran if engine is not None else refused).append((prior, likelihood, network))
                if engine is not None:
                    assert engine.describe()["path"] in ("replay", "one-pass", "pyro")
    assert ran, f"{model_type}: no combination ran (refused: {refused[:3]} ...)"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("objective", OBJECTIVES.names())
def test_every_objective_one_step(objective):
    weighted = [{"beta": 0.5, "warmup_steps": 3, "free_bits": 0.1}]
    fields = {f.name for f in dataclasses.fields(OBJECTIVES.get(objective).config_cls)}
    variants = [{}] + [v for v in weighted if set(v) <= fields]
    ran = 0
    for model_type in MODELS.names():
        for options in variants:
            engine = _one_step(model_type, objective=objective, options=options)
            ran += engine is not None
            if engine is not None and options and "fused" in fields:  # β, warm-up, free bits: on the one pass
                assert engine.describe()["path"] != "pyro" or "site" in engine.describe()["reason"], engine.describe()
    assert ran


def _each_component_once() -> List[Tuple[str, Optional[str], Optional[str], Optional[str]]]:
    cases = [(m, None, None, None) for m in MODELS.names()]
    cases += [(m, p, None, None) for p in PRIORS.names() for m in ("vae", "cvae")]  # conditional priors: cvae
    cases += [("vae", None, lik, None) for lik in pointwise_likelihoods()]
    cases += [("vae", None, None, net) for net in NETWORKS.names()]
    return cases


@pytest.mark.filterwarnings("ignore")
def test_replayed_steps_of_each_component_equal_pyro():
    """Steps 2 (recorded, checked) and 3 (replayed) of each component alone: still Pyro's loss and gradients."""
    described = {}
    for case in _each_component_once():
        engine = _one_step(*case, steps=3)
        if engine is not None:
            described[case] = engine.describe()
    assert set(PRIORS.names()) <= {prior for (_, prior, _, _) in described}  # each prior ran with vae or cvae
    for case, d in described.items():  # every program replays, unless its objective has no one-pass form
        assert d["path"] == "replay" or "no one-pass form" in d["reason"], (case, d)
