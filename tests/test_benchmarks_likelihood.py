"""benchmarks/likelihood.py: its importance-sampling estimator against pyro-vae's and pythae's own, its rows as
valid overrides of the config that lists them, and the report step over the sweeps' summaries (tiny nets,
seconds; the pythae test skips when pythae is not installed)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from pyro_vae.config.run import load_config
from pyro_vae.data import ImageData
from pyro_vae.evaluation.loglik import test_log_likelihood as library_log_likelihood
from pyro_vae.experiments.grid import build
from pyro_vae.experiments.summary import write_csv
from pyro_vae.models import build_model

REPO = Path(__file__).resolve().parents[1]
SHAPE = (1, 4, 4)


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports its neighbour sweep_report
    spec = importlib.util.spec_from_file_location("likelihood_bench", REPO / "benchmarks" / "likelihood.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path.remove(str(REPO / "benchmarks"))


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


def test_every_row_is_a_valid_sweep_of_the_config_and_the_config_lists_it(bench):
    """Each pyro-vae row's overrides build a checked sweep grid of configs/mnist_likelihood.yaml, and the
    config's header lists exactly those overrides (the config is the one place a user reads the rows)."""
    header = {}
    for line in bench.CONFIG.read_text().splitlines():
        listed = re.match(r"#\s+(?:\.\.\.|pyro-vae train \S+)(.*?)#\s*(\S+)\s*$", line)
        if listed:
            header[listed.group(2)] = listed.group(1).split()
    assert header == bench.ROWS
    for row, extra in bench.ROWS.items():
        grid = build(bench.CONFIG, [*extra, "seed=0,1"], keep=("seed",))
        assert [cell.config.seed for cell in grid] == [0, 1], row
        assert grid[0].config.train.epochs == 40 and grid[0].config.train.clip_norm is None, row
    setting = bench.Setting.of(bench.run_config())  # what the pythae side reads from the same config
    assert (setting.hidden_dims, setting.activation, setting.latent_dim, setting.batch_size) == \
        ([200, 200], "tanh", 50, 100)


def test_report_reads_both_summaries_into_the_table_the_figure_and_the_write_up(bench, tmp_path):
    for library, seeds, log_px in (("pyro-vae", [0, 1, 2], [-90.0, -92.0, -94.0]), ("pythae", [0, 1], [-91.0, -93.0])):
        rows = [{"run": f"seed={s}", "seed": s, "status": "done", "epochs": 4, "train_elbo": v - 3,
                 "test_elbo": v - 4, "seconds": 8.0, "test_log_likelihood": v} for s, v in zip(seeds, log_px)]
        if library == "pyro-vae":
            rows.append({"run": "seed=3", "seed": 3, "status": "failed", "error": "diverged"})
        (tmp_path / library / "vae").mkdir(parents=True)
        write_csv(rows, tmp_path / library / "vae" / "summary.csv")
    writeup = tmp_path / "likelihood.md"
    writeup.write_text(f"before\n{bench.TABLE_START}\nold table\n{bench.TABLE_END}\nafter\n")
    text = bench.report(tmp_path, writeup)
    assert "| vae | pyro-vae | 3/4 | -96.00 ± 2.00 | -92.00 ± 2.00 | 2.00 ± 0.00 | 8.00 ± 0.00 |" in text
    assert "| vae | pythae | 2/2 | -96.00 ± 1.41 | -92.00 ± 1.41 |" in text
    assert (tmp_path / "likelihood_table.md").read_text() == text
    assert (tmp_path / "likelihood.png").stat().st_size > 0
    doc = writeup.read_text()
    assert "old table" not in doc and text in doc and doc.startswith("before\n") and doc.endswith("after\n")


def test_converged_report_gives_each_stopped_rows_budget_and_its_own_place_in_the_write_up(bench, tmp_path):
    """The budget is the best validation epoch under the stopping rule; an unstopped row has none yet."""
    history = {"vae": [-110.0, -100.0, -99.0, -99.5, -99.2, -99.4], "iwae5": [-105.0, -101.0]}
    for row, bounds in history.items():
        folder = tmp_path / "budget" / row
        (folder / "seed=0").mkdir(parents=True)
        (folder / "seed=0" / "metrics.jsonl").write_text("".join(
            json.dumps({"epoch": e + 1, "test_elbo": b - 3, "test_iwae": b}) + "\n" for e, b in enumerate(bounds)))
        write_csv([{"run": "seed=0", "seed": 0, "status": "done" if row == "vae" else "interrupted"}],
                  folder / "summary.csv")
    writeup = tmp_path / "likelihood.md"
    writeup.write_text(f"{bench.TABLE_START}\nearly\n{bench.TABLE_END}\n{bench.CONVERGED_START}\nold\n"
                       f"{bench.CONVERGED_END}\n")
    text = bench.report(tmp_path, writeup, converged=True)
    assert "| vae | 6 | 3 | -99.00 |" in text and "| iwae5 |" not in text
    doc = writeup.read_text()
    assert "early" in doc and "old" not in doc and text in doc


def test_pythae_side_skips_cleanly_without_pythae(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pythae", None)  # `import pythae` raises ImportError
    bench.run_pythae(["vae", "iwae5"], [0], [], tmp_path, 10)
    assert "pythae rows skipped" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_pythae_side_trains_each_seed_once_into_the_sweeps_summary_columns(bench, tmp_path, monkeypatch):
    """The pythae loop on a stand-in model (pythae itself may be absent): one result per seed, the summary in
    the sweep's columns, and a rerun trains nothing that finished."""
    from types import ModuleType, SimpleNamespace

    from torch import nn

    class StandIn(nn.Module):
        model_name = "VAE"

        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 1)

        def forward(self, inputs, epoch):
            return SimpleNamespace(loss=self.linear(inputs["data"].flatten(1)).pow(2).mean())

    built = []
    monkeypatch.setitem(sys.modules, "pythae", ModuleType("pythae"))
    monkeypatch.setattr(bench, "CONFIG", REPO / "configs" / "digits_vae.yaml")
    monkeypatch.setattr(bench, "pythae_model", lambda kind, shape, setting: built.append(kind) or StandIn())
    monkeypatch.setattr(bench, "pythae_log_weights", lambda model: lambda x, k: torch.full((k, x.shape[0]), -5.0))
    for _ in range(2):
        bench.run_pythae(["vae", "flow"], [0, 1], ["train.epochs=1", "data.limit=200"], tmp_path, 4)
    assert built == ["vae", "vae"]  # flow has no pythae counterpart; the second pass trained nothing
    rows = bench.read_summary(tmp_path / "pythae" / "vae")
    assert [(r["run"], r["seed"], r["status"], r["epochs"]) for r in rows] == [("seed=0", "0", "done", "1"),
                                                                               ("seed=1", "1", "done", "1")]
    assert [float(r["test_log_likelihood"]) for r in rows] == [-5.0, -5.0]
