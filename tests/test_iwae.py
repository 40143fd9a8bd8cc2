"""IWAE on the torch engine: the one-pass bound equals Pyro's RenyiELBO(α=0) and a hand-written torch
computation, in value and gradients; DReG gradients equal a hand-written DReG; K=1 is the ELBO; the engine
is the torch one (no fall-back) and a run checkpoints and resumes."""

from __future__ import annotations

import math
from typing import List, Tuple

import pyro
import pyro.distributions as dist
import pyro.infer
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model, tiny_overrides
from torch import Tensor

from pyro_vae import load_config, train
from pyro_vae.config.schema import from_dict
from pyro_vae.errors import ConfigError
from pyro_vae.fast import compat, compile_loss
from pyro_vae.infer.objectives import build_elbo
from pyro_vae.models import VAE, VAEConfig
from pyro_vae.registry import OBJECTIVES
from pyro_vae.run import resume
from pyro_vae.train import factory
from pyro_vae.train.config import TrainConfig
from pyro_vae.train.engine import TorchEngine

SHAPE, D, B = (1, 4, 4), 3, 6


@pytest.fixture
def double():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def tiny_vae() -> VAE:
    return tiny_model("vae", SHAPE, latent_dim=D)


def data(seed: int = 0) -> Tensor:
    return torch.bernoulli(torch.full((B, *SHAPE), 0.3), generator=torch.Generator().manual_seed(seed))


def iwae(k: int, estimator: str = "iwae", vectorize: bool = True):
    return OBJECTIVES.get("iwae").config_cls(num_particles=k, estimator=estimator, vectorize_particles=vectorize)


def hand_written(vae: VAE, x: Tensor, k: int, stop_guide: bool = False) -> Tuple[Tensor, Tensor]:
    """log w of shape (K, B) written out in torch (ε drawn as Normal.rsample draws it) and the draws z."""
    loc, scale = vae.encoder(x, None)
    z = loc + compat.standard_normal(torch.Size((k, *loc.shape)), loc) * scale
    logits = vae.decoder(z, None).reshape(k, B, -1)
    log_px = -F.binary_cross_entropy_with_logits(logits, x.reshape(1, B, -1).expand(k, B, -1), reduction="none").sum(-1)
    log_pz = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    q_loc, q_scale = (loc.detach(), scale.detach()) if stop_guide else (loc, scale)
    log_qz = (-0.5 * ((z - q_loc) / q_scale) ** 2 - q_scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    return log_px + log_pz - log_qz, z


def bound(log_w: Tensor) -> Tensor:
    """−Σ_b [logsumexp_k log w − log K]."""
    return -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])).sum()


def grads(loss: Tensor, params: List[Tensor]) -> List[Tensor]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def fast_loss(vae: VAE, objective, x: Tensor, seed: int, calls: int = 1) -> Tensor:
    """The speed layer's loss on the ``calls``-th call (2: the first replayed/recorded step), drawn at ``seed``."""
    loss = compile_loss(vae, objective, notify=None)
    for _ in range(calls - 1):
        loss.loss(x, None)
    torch.manual_seed(seed)
    return loss.loss(x, None)


@pytest.mark.parametrize("vectorize", [True, False])
@pytest.mark.parametrize("calls", [1, 3])  # 1: eager (and Pyro's validated check); 3: replayed graph
def test_fast_iwae_equals_renyi_elbo_and_hand_written(double, vectorize, calls):
    vae, x, k = tiny_vae(), data(), 5
    params = list(vae.parameters())
    fast = fast_loss(vae, iwae(k, vectorize=vectorize), x, seed=3, calls=calls)
    renyi = build_elbo(iwae(k, vectorize=vectorize), max_plate_nesting=1)
    torch.manual_seed(3)
    pyro_value = renyi.loss(vae.model, vae.guide, x, None)
    assert fast.item() == pytest.approx(pyro_value, rel=1e-12)
    torch.manual_seed(3)
    pyro_diff = renyi.differentiable_loss(vae.model, vae.guide, x, None)  # the trace-based fall-back
    assert pyro_diff.item() == pytest.approx(pyro_value, rel=1e-12)
    if vectorize:  # the hand-written draws are one (K, B, D) tensor, as in the vectorized particle plate
        torch.manual_seed(3)
        by_hand = bound(hand_written(vae, x, k)[0])
        assert fast.item() == pytest.approx(by_hand.item(), rel=1e-12)
        for a, b, c in zip(grads(fast, params), grads(by_hand, params), grads(pyro_diff, params)):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12) and torch.allclose(c, b, rtol=1e-9, atol=1e-12)


def test_trace_based_iwae_gradient_is_pyros(double):
    """The fall-back's differentiable_loss has the gradient of Pyro's own RenyiELBO surrogate (loss_and_grads)."""
    vae, x = tiny_vae(), data()
    renyi = build_elbo(iwae(4), max_plate_nesting=1)
    params = list(vae.parameters())
    torch.manual_seed(1)
    ours = grads(renyi.differentiable_loss(vae.model, vae.guide, x, None), params)
    for p in params:
        p.grad = None
    torch.manual_seed(1)
    pyro.infer.RenyiELBO.loss_and_grads(renyi, vae.model, vae.guide, x, None)
    for a, p in zip(ours, params):
        assert torch.allclose(a, p.grad, rtol=1e-9, atol=1e-12)


def test_dreg_gradients_equal_a_hand_written_dreg(double):
    vae, x, k = tiny_vae(), data(), 6
    encoder, decoder = list(vae.encoder.parameters()), list(vae.decoder.parameters())
    fast = fast_loss(vae, iwae(k, "dreg"), x, seed=4, calls=2)
    fast.backward()
    torch.manual_seed(4)
    log_w, _ = hand_written(vae, x, k, stop_guide=True)
    assert fast.item() == pytest.approx(bound(log_w).item(), rel=1e-12)  # the reported value is the IWAE bound
    w = torch.softmax(log_w.detach(), 0)
    dreg_encoder = grads(-(w ** 2 * log_w).sum(), encoder)  # Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ
    standard_decoder = grads(-(w * log_w).sum(), decoder)  # Σ_k w̃_k ∇_θ log w_k
    for p, g in zip(encoder + decoder, dreg_encoder + standard_decoder):
        assert torch.allclose(p.grad, g, rtol=1e-9, atol=1e-12)
    # and DReG's encoder gradient is not the standard one (the test can tell them apart)
    torch.manual_seed(4)
    standard = grads(bound(hand_written(vae, x, k)[0]), encoder)
    assert not all(torch.allclose(a, b, rtol=1e-3) for a, b in zip(standard, dreg_encoder))


def test_dreg_with_particles_drawn_one_by_one(double):
    """vectorize_particles=false: K passes, one hook per pass; the value is still Pyro's bound."""
    vae, x = tiny_vae(), data()
    fast = fast_loss(vae, iwae(3, "dreg", vectorize=False), x, seed=5)
    fast.backward()
    torch.manual_seed(5)
    reference = build_elbo(iwae(3, vectorize=False), max_plate_nesting=1).loss(vae.model, vae.guide, x, None)
    assert fast.item() == pytest.approx(reference, rel=1e-12)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())


def test_k1_iwae_is_the_elbo(double):
    vae, x = tiny_vae(), data()
    params = list(vae.parameters())
    fast = fast_loss(vae, iwae(1), x, seed=7)
    elbo = pyro.infer.Trace_ELBO(max_plate_nesting=1)
    torch.manual_seed(7)
    reference = elbo.differentiable_loss(vae.model, vae.guide, x, None)
    assert fast.item() == pytest.approx(reference.item(), rel=1e-12)
    for a, b in zip(grads(fast, params), grads(reference, params)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("estimator", ["iwae", "dreg"])
def test_auto_engine_is_torch_without_a_fall_back(estimator, capsys):
    vae = tiny_vae()
    config = from_dict(TrainConfig, {"objective": {"type": "iwae", "estimator": estimator}})
    engine = factory.build_engine(vae, config)
    assert isinstance(engine, TorchEngine)
    for seed in range(3):
        assert math.isfinite(engine.step(data(seed)))
    path = engine.describe()["path"]
    assert path == ("replay" if estimator == "iwae" else "one-pass")
    assert engine.describe()["elbo"] == "RenyiELBO"
    assert "fast path off" not in capsys.readouterr().err


def test_dreg_needs_the_torch_engine():
    config = load_config(None, tiny_overrides("train.objective.type=iwae", "train.objective.estimator=dreg",
                                              "train.engine=svi"))
    with pytest.raises(ConfigError, match=r"^train\.objective\.estimator: 'dreg' needs train\.engine") as e:
        train(config, None)
    assert "\n" not in str(e.value)


class FlowGuideVAE(VAE):
    """q(z|x) as a TransformedDistribution: log q at stop-gradient parameters is not available."""

    def posterior(self, x, c):
        loc, scale = self.encoder(x, c)
        return dist.TransformedDistribution(dist.Normal(loc, scale), [dist.transforms.AffineTransform(1.0, 2.0)]
                                            ).to_event(1)


class FullCovarianceVAE(VAE):
    """q(z|x) = MultivariateNormal(μ, LLᵀ) with L = diag(σ): the diagonal guide as a full-covariance family."""

    def posterior(self, x, c):
        loc, scale = self.encoder(x, c)
        return dist.MultivariateNormal(loc, scale_tril=torch.diag_embed(scale))


def test_dreg_with_a_full_covariance_guide(double):
    """DReG scores a MultivariateNormal q at stop-gradient (μ, L): with a diagonal L, the same gradients as the
    diagonal Gaussian guide on the same draws."""
    cfg = from_dict(VAEConfig, {"latent_dim": D, "network": {"type": "mlp", "hidden_dims": [8]}})
    diagonal = tiny_vae()
    full = FullCovarianceVAE(cfg, SHAPE)
    full.load_state_dict(diagonal.state_dict())
    x = data()
    for vae in (diagonal, full):
        fast_loss(vae, iwae(4, "dreg"), x, seed=6).backward()
    for a, b in zip(diagonal.parameters(), full.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_dreg_with_a_flow_guide_is_one_line():
    cfg = from_dict(VAEConfig, {"latent_dim": D, "network": {"type": "mlp", "hidden_dims": [8]}})
    vae = FlowGuideVAE(cfg, SHAPE)
    loss = compile_loss(vae, iwae(3, "dreg"), notify=None)
    with pytest.raises(ConfigError, match=r"^train\.objective\.estimator: 'dreg' needs log q") as e:
        loss.loss(data(), None)
    assert "\n" not in str(e.value) and "'z'" in str(e.value)
    assert math.isfinite(compile_loss(vae, iwae(3), notify=None).loss(data(), None).item())  # iwae: fine


def test_dreg_with_the_guide_families(tmp_path, capsys):
    """model.guide full_covariance trains with DReG; iaf (a flow) is refused in one line, exit 2, before any run
    folder is written."""
    from pyro_vae.cli import main

    common = ["train.epochs=1", "data.limit=100", "train.objective.type=iwae", "train.objective.estimator=dreg",
              "train.objective.num_particles=3"]
    run = train(None, tmp_path / "full", tiny_overrides(*common, "model.guide=full_covariance"))
    assert math.isfinite(run.history[-1]["train_elbo"])
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "iaf"),
                 *tiny_overrides(*common, "model.guide=iaf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.objective.estimator: 'dreg'" in err and "Traceback" not in err
    assert "model.guide.type" in err and not (tmp_path / "iaf").exists()


@pytest.mark.parametrize("estimator", ["iwae", "dreg"])
def test_iwae_run_trains_checkpoints_and_resumes(tmp_path, estimator, capsys):
    out = tmp_path / "run"
    run = train(None, out, tiny_overrides("train.epochs=1", "data.limit=200", "train.objective.type=iwae",
                                          "train.objective.num_particles=3", f"train.objective.estimator={estimator}"))
    assert [row["engine"]["path"] for row in run.history] == ["replay" if estimator == "iwae" else "one-pass"]
    assert math.isfinite(run.history[-1]["train_elbo"])
    resumed = resume(out, ["train.epochs=2"])
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert resumed.config.train.objective.estimator == estimator
    assert "fast path off" not in capsys.readouterr().err
