"""Engines: the torch engine takes the same steps as SVI, covers every model and objective, and leaks nothing."""

import gc
import math

import pyro
import pytest
import torch

from conftest import tiny_overrides
from pyro_vae import load_config, train
from pyro_vae.config.schema import from_dict
from pyro_vae.data import load_data
from pyro_vae.errors import ConfigError
from pyro_vae.models import build_model
from pyro_vae.registry import MODELS, OBJECTIVES
from pyro_vae.train import engine as engines
from pyro_vae.train import factory
from pyro_vae.train.config import TrainConfig


def _setup(engine, objective="elbo", model_type="vae"):
    config = load_config(None, tiny_overrides() if model_type == "vae" else [])
    if model_type != "vae":
        config.model = MODELS.get(model_type).config_cls()
    data = load_data(config.data, config.seed)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    model = build_model(config.model, data.shape, data.num_classes)
    train_cfg = from_dict(TrainConfig, {"engine": engine, "objective": {"type": objective}, "batch_size": 32})
    return model, data, factory.build_engine(model, train_cfg)


def _steps(engine, data, n):
    batches = data.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(1))
    return [engine.step(x, y) for (x, y), _ in zip(batches, range(n))]


def test_torch_engine_takes_the_svi_steps():
    """Same seed, same noise: identical losses first, then Adam updates equal up to ε placement."""
    model_a, data, svi = _setup("svi")
    losses_a = _steps(svi, data, 6)
    model_b, data, eng = _setup("torch")
    losses_b = _steps(eng, data, 6)
    assert isinstance(svi, engines.SVIEngine) and isinstance(eng, engines.TorchEngine)
    assert losses_a[0] == pytest.approx(losses_b[0], rel=1e-6)  # before any update: the same objective
    assert losses_a == pytest.approx(losses_b, rel=1e-3)
    for (name, a), b in zip(model_a.named_parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=5e-4), name


def test_auto_is_torch_where_the_objective_allows_else_svi(monkeypatch):
    model, _, _ = _setup("svi")
    for name in OBJECTIVES.names():  # every registered objective, including ones without differentiable_loss
        cfg = from_dict(TrainConfig, {"objective": {"type": name}})
        supported = engines.supports_torch_engine(engines.build_elbo(cfg.objective, 1))
        assert factory.resolve_engine(model, cfg) == ("torch" if supported else "svi"), name
        assert supported or name not in {"elbo", "meanfield", "enum"}, name
    monkeypatch.setattr(factory, "build_elbo", lambda config, nesting: object())  # an ELBO with loss_and_grads only
    monkeypatch.setattr(engines, "build_elbo", lambda config, nesting: object())
    assert factory.resolve_engine(model, TrainConfig()) == "svi"
    assert isinstance(factory.build_engine(model, TrainConfig()), engines.SVIEngine)
    with pytest.raises(ConfigError, match="train.engine"):
        engines.TorchEngine(model, TrainConfig())


ENUM_ONLY = ("gmvae", "m2")  # models with enumerated sites: train.objective enum only


@pytest.mark.filterwarnings("ignore:TraceEnum_ELBO found no sample sites")
@pytest.mark.parametrize("model_type", sorted(MODELS.names()))
def test_every_model_and_objective_same_first_loss_as_svi(model_type):
    """Every registered model with elbo (gmvae, m2: enum), and the VAE with every registered objective."""
    for objective in OBJECTIVES.names() if model_type == "vae" else ["enum" if model_type in ENUM_ONLY else "elbo"]:
        _, data, svi = _setup("svi", objective, model_type)
        expected = _steps(svi, data, 1)[0]
        _, data, eng = _setup("auto", objective, model_type)
        got = _steps(eng, data, 3)
        assert got[0] == pytest.approx(expected, rel=1e-5), (model_type, objective)
        assert all(math.isfinite(v) for v in got)


def _live_tensors():
    gc.collect()
    return sum(1 for o in gc.get_objects() if torch.is_tensor(o))


def test_no_growth_across_epochs():
    """Nothing accumulates step to step: live tensors, optimizer state and param store stay constant."""
    _, data, eng = _setup("torch")
    counts = []
    for epoch in range(3):
        losses = _steps(eng, data, 5)
        counts.append((_live_tensors(), len(eng.optim.state), len(pyro.get_param_store())))
    assert all(isinstance(v, float) for v in losses)
    assert counts[1] == counts[2], counts


def test_engine_option_trains_end_to_end(tmp_path):
    histories = {}
    for name in ("svi", "torch"):
        config = load_config(None, tiny_overrides(f"train.engine={name}", "train.epochs=1", "data.limit=500"))
        run = train(config, tmp_path / name)
        histories[name] = run.history
    assert all(math.isfinite(h["train_elbo"]) for hs in histories.values() for h in hs)
    # which path computed the loss, in every metrics row and in the checkpoint
    assert histories["torch"][0]["engine"] == {"path": "replay", "reason": "2 recorded graph(s)", "elbo": "Trace_ELBO"}
    assert histories["svi"][0]["engine"] == {"path": "pyro", "reason": "train.engine=svi", "elbo": "Trace_ELBO"}
    payload = torch.load(tmp_path / "torch" / "model.pt", weights_only=True)
    assert payload["engine"]["path"] == "replay"
    assert abs(histories["svi"][-1]["test_elbo"] - histories["torch"][-1]["test_elbo"]) < 0.5


def test_bad_engine_name_is_a_config_error():
    with pytest.raises(ConfigError, match="train.engine"):
        load_config(None, ["train.engine=turbo"])


def test_engine_and_distributed_import_in_one_direction():
    """train/engine.py does not import train/distributed.py or the factory; distributed builds on engine only."""
    import ast
    from pathlib import Path

    from pyro_vae.train import distributed

    def imported(module) -> set:
        names = set()
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.ImportFrom):
                names |= {node.module or ""} | {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
        return {n.rsplit(".", 1)[-1] for n in names}

    assert not {"distributed", "factory"} & imported(engines)
    assert "engine" in imported(distributed) and "factory" not in imported(distributed)


def test_a_fall_back_is_said_once_and_recorded(tmp_path, capsys):
    """An objective the fast path cannot run: one line on stderr for the whole run, and the reason in the metadata."""
    config = load_config(None, tiny_overrides("train.objective.type=enum", "data.limit=300"))
    run = train(config, tmp_path / "run")
    err = capsys.readouterr().err
    assert err.count("pyro-vae: fast path off") == 1 and "Traceback" not in err
    assert [row["engine"]["path"] for row in run.history] == ["pyro", "pyro"]
    assert "no one-pass form" in run.history[0]["engine"]["reason"]
