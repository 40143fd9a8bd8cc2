"""The CVAE's baseline phase (``model.pretrain.epochs``): the baseline x̂ = f(c) is fitted first and starts the
decoder; the phase is checkpointed and resumed mid-way; bad values are one-line errors naming the key."""

from __future__ import annotations


import pytest
import torch

from conftest import REPO, same_metrics, tiny_overrides
from pyro_vae import ConfigError, load_config, resume, train
from pyro_vae.cli import main
from pyro_vae.data import load_data
from pyro_vae.data.quadrants import visible_quadrants
from pyro_vae.models import build_model
from pyro_vae.models.baseline import check_baseline_fits
from pyro_vae.models.cvae import CVAE, baseline_for
from pyro_vae.run import Run
from pyro_vae.train import Trainer
from pyro_vae.train.callbacks import Callback
from pyro_vae.train.phases import MAIN, PRETRAIN, pretrain_epochs
from pyro_vae.train.signals import Interrupted

SHAPE = (1, 8, 8)


def quadrant_overrides(*extra):
    return tiny_overrides("model.type=cvae", "model.condition=quadrants", "model.pretrain.epochs=2", "data.limit=300",
                          *extra)


@pytest.fixture(autouse=True)
def _no_pictures(monkeypatch):
    monkeypatch.setattr(Run, "write_pictures", lambda self: None)


def test_no_baseline_phase_by_default():
    model = build_model(load_config(None, ["model.type=cvae"]).model, SHAPE)
    assert pretrain_epochs(model) == 0 and model.baseline is None


def test_the_cvae_is_handed_its_baseline():
    """As Pyro's CVAE example is handed its pre-trained baseline network: a given baseline is the one fitted
    and started from; without one, the CVAE builds it from its own config."""
    config = load_config(None, ["model.type=cvae", "model.condition=quadrants", "model.pretrain.epochs=1"]).model
    baseline = baseline_for(config, SHAPE, 10)
    given = CVAE(config, SHAPE, 10, baseline=baseline)
    built = build_model(config, SHAPE)
    assert given.baseline is baseline and isinstance(built.baseline, type(baseline))
    assert set(given.state_dict()) == set(built.state_dict())  # checkpoints hold the same names


def test_pretrain_loss_is_the_baselines_hidden_pixel_nll():
    model = build_model(load_config(None, quadrant_overrides()).model, SHAPE)
    x = torch.bernoulli(torch.full((4, *SHAPE), 0.4))
    hidden = ~visible_quadrants(SHAPE, 2)
    logits = model.baseline.predict(x[:, ~hidden])[:, 0]
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    assert torch.allclose(model.pretrain_loss(x), (nll * hidden).sum(), atol=1e-4)


def test_phase_fits_the_baseline_then_starts_the_decoder_at_it():
    """Pretraining moves only the baseline; after it the decoder's weights are the baseline's (z-columns zero),
    so f(z, c) = f(c) for every z; then the main phase trains the CVAE."""
    torch.set_num_threads(1)
    config = load_config(None, quadrant_overrides())
    data = load_data(config.data, config.seed)
    model = build_model(config.model, data.shape, data.num_classes)
    baseline_before = [p.clone() for p in model.baseline.parameters()]
    encoder_before = [p.clone() for p in model.encoder.parameters()]
    seen = []

    def check(trainer):
        if trainer.phase != MAIN:
            assert all(torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters()))
            return
        source, latent = model.baseline.decoder.state_dict(), config.model.latent_dim
        for name, w in model.decoder.state_dict().items():
            if w.shape == source[name].shape:
                assert torch.equal(w, source[name]), name
            else:  # the first layer reads [z, c]: zero columns for z, the baseline's for c
                assert torch.equal(w[:, latent:], source[name]) and not w[:, :latent].any(), name
        x, _ = next(data.batches("test", 16))
        c = model.cond(x)
        z = torch.randn(x.shape[0], latent)
        assert torch.allclose(model.decoder(z, c), model.baseline.predict(c), atol=1e-6)
        seen.append(trainer.pretrain_history)

    class Check(Callback):  # after each baseline epoch (no metrics row) and once the phase is over
        def on_epoch_end(self, trainer, metrics):
            assert metrics is None or trainer.phase == MAIN
            if metrics is None:
                check(trainer)

        def on_phase_end(self, trainer, phase):
            if phase == PRETRAIN:
                check(trainer)

    Trainer(model, data, config.train, seed=0).fit([Check()])
    assert len(seen) == 1 and len(seen[0]) == 2 and seen[0][1] < seen[0][0]  # the baseline's NLL went down
    assert not all(torch.equal(a, b) for a, b in zip(baseline_before, model.baseline.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters()))


def test_interrupted_in_the_baseline_phase_resumes_in_it(tmp_path, interrupt_pretraining):
    """A stop mid-pretraining checkpoints the phase; the resumed run finishes it (same batches), starts the
    decoder at the baseline and trains: the same metrics as an uninterrupted run."""
    torch.set_num_threads(1)
    config = quadrant_overrides()
    reference = train(load_config(None, config), tmp_path / "ref")
    restore = interrupt_pretraining(6)  # mid pretraining epoch 2 (300 digits -> 270 train, 5 batches of 64)
    with pytest.raises(Interrupted, match="pretrain epoch 2"):
        train(load_config(None, config), tmp_path / "run")
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["trainer"]
    assert state["phase"] == "pretrain" and state["pretrain"]["epoch"] == 1 and state["batch"] == 1
    restore()
    resumed = resume(tmp_path / "run")
    assert same_metrics(resumed, reference)
    for a, b in zip(resumed.model.state_dict().values(), reference.model.state_dict().values()):
        assert torch.equal(a, b)


def test_mnist_config_has_the_baseline_phase():
    config = load_config(REPO / "configs" / "mnist_cvae.yaml")  # (reads no data)
    assert config.model.pretrain.epochs > 0 and config.model.condition == "quadrants"


def test_a_decoder_the_baseline_cannot_start_is_a_config_error():
    cvae = build_model(load_config(None, quadrant_overrides()).model, SHAPE)
    other = build_model(load_config(None, quadrant_overrides("model.type=baseline", "model.network.hidden_dims=[8]"))
                        .model, SHAPE)
    with pytest.raises(ConfigError, match="model.pretrain.epochs: the baseline's decoder"):
        check_baseline_fits(cvae, other)


@pytest.mark.parametrize("override, key", [
    ("model.pretrain.epochs=-1", "model.pretrain.epochs"),
    ("model.pretrain.epochs=two", "model.pretrain.epochs"),
    ("model.pretrain.lr=0", "model.pretrain.lr"),
    ("model.pretrain.kind=vae", "model.pretrain.kind"),
])
def test_bad_values_are_one_line_naming_the_key(tmp_path, capsys, override, key):
    assert main(["train", *quadrant_overrides(override), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
