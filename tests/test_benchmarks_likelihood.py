"""benchmarks/likelihood.py: its importance-sampling estimator against pyro-vae's and pythae's own, and its
results file (tiny nets, seconds; the pythae test skips when pythae is not installed)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from pyro_vae.config.run import load_config
from pyro_vae.data import ImageData
from pyro_vae.evaluation.loglik import test_log_likelihood as library_log_likelihood
from pyro_vae.models import build_model

REPO = Path(__file__).resolve().parents[1]
SHAPE = (1, 4, 4)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("likelihood_bench", REPO / "benchmarks" / "likelihood.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _binary_images(n: int = 24) -> torch.Tensor:
    return torch.bernoulli(torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(3)),
                           generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_script_estimator_matches_pyro_vae_loglik(bench, prior):
    config = load_config(REPO / "configs" / "digits_vae.yaml",
                         ["model.network.hidden_dims=[8]", "model.latent_dim=2", f"model.prior.type={prior}",
                          "model.prior.num_components=3"] if prior == "vamp" else
                         ["model.network.hidden_dims=[8]", "model.latent_dim=2"])
    torch.manual_seed(0)
    model = build_model(config.model, SHAPE, 10).eval()
    x = _binary_images()
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    data = ImageData("tiny", x[:1], labels[:1], x, labels, 10)
    library = library_log_likelihood(model, data, num_samples=4000, batch_size=8)
    torch.manual_seed(1)
    log_px, elbo = bench.importance_log_px(bench.pyro_vae_log_weights(model), x, num_samples=4000, batch_size=8)
    assert log_px.shape == elbo.shape == (x.shape[0],)
    assert torch.allclose(log_px, library.log_px, atol=0.03)  # two independent K = 4000 estimates of log p(x)
    assert torch.allclose(elbo, library.elbo, atol=0.1)
    assert bool((elbo <= log_px + 1e-4).all())  # Jensen


@pytest.mark.parametrize("kind", ["vae", "vamp", "iaf"])
def test_script_estimator_matches_pythae_get_nll(bench, kind):
    pytest.importorskip("pythae")
    setting = bench.Setting(hidden_dims=[8], latent_dim=2)
    torch.manual_seed(0)
    model = bench.pythae_model(kind, SHAPE, setting).eval()
    x = _binary_images(6)
    with torch.no_grad():
        theirs = float(model.get_nll(x, n_samples=2000, batch_size=100))  # pythae's own estimator (mean log p(x))
    log_px, _ = bench.importance_log_px(bench.pythae_log_weights(model), x, num_samples=2000)
    assert math.isfinite(theirs)
    assert abs(float(log_px.mean()) - theirs) < 0.05


def test_results_file_resume_and_table(bench, tmp_path):
    path = tmp_path / "rows.jsonl"
    for seed, value in enumerate([-90.0, -92.0, -94.0]):
        bench.append_row(path, {"model": "pyro-vae/vae", "seed": seed, "epochs": 3, "validation": 0, "elbo": value - 4,
                                "log_px": value, "num_samples": 10, "num_images": 5, "epoch_seconds": [1.0, 2.0, 3.0]})
    with open(path, "a") as f:
        f.write('{"model": "pythae/vae", "se')  # a row cut short by a crash: read as not done
    rows = bench.read_rows(path)
    assert [bench.row_key(r) for r in rows] == [("pyro-vae/vae", s, 3, 0) for s in range(3)]
    text = bench.table(rows)
    assert "| vae | pyro-vae | 3 | 3 | -96.00 ± 2.00 | -92.00 ± 2.00 | 10 (5) | 2.00 | 6 |" in text
    bench.figure(rows, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_the_config_reproduces_every_pyro_vae_row(bench):
    """configs/mnist_likelihood.yaml plus a row's overrides is the run the benchmark trains for that row."""
    from pyro_vae.config.schema import to_dict

    for row, extra in bench.PYRO_MODELS.items():
        script = to_dict(load_config(REPO / "configs" / "mnist_vae.yaml", bench.SETTING.overrides() + extra))
        config = to_dict(load_config(REPO / "configs" / "mnist_likelihood.yaml",
                                     ["train.progress=false", "train.device=cpu", *extra]))
        script["train"]["epochs"] = config["train"]["epochs"]  # the script takes --epochs (40 in the write-up)
        assert (script["data"], script["model"], script["train"]) == \
            (config["data"], config["model"], config["train"]), row
