"""Runs side by side (`compare`), clustering accuracy in `evaluate`, the mixture prior drawn in latent.png."""

from __future__ import annotations

import pytest
from conftest import tiny_overrides

from pyro_vae.cli import main
from pyro_vae.compare import compare_runs
from pyro_vae.errors import ConfigError
from pyro_vae.run import load_run, train


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    normal = train(None, root / "normal", tiny_overrides("data.limit=200", "train.epochs=1"))
    gmm = train(None, root / "gmm", tiny_overrides("data.limit=200", "train.epochs=1", "model.prior.type=gmm",
                                                   "model.prior.num_components=3", "model.prior.form=enumerate",
                                                   "train.objective.type=enum"))
    return normal, gmm


def test_compare_puts_runs_in_one_table_and_one_figure(two_runs, tmp_path):
    normal, gmm = two_runs
    figure = tmp_path / "cmp.png"
    table = compare_runs([normal.path, gmm.path], figure, names=["N(0,I)", "GMM"], num_samples=3)
    lines = table.strip().splitlines()
    assert len(lines) == 4 and "log p(x) (K=3)" in lines[0] and "cluster acc." in lines[0]
    assert lines[2].startswith("| N(0,I) | vae | normal | bernoulli | gaussian | elbo | 1 |") and "| gmm |" in lines[3]
    assert "| gaussian | enum |" in lines[3]  # runs that differ only in guide or objective are told apart
    assert lines[2].rstrip().endswith("| — |")  # no clusters for N(0, I)
    assert figure.stat().st_size > 0
    with pytest.raises(ConfigError, match="two or more"):
        compare_runs([normal.path])


def test_compare_command(two_runs, tmp_path, capsys):
    normal, gmm = two_runs
    assert main(["compare", str(normal.path), str(gmm.path), "-o", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "| normal |" in out and "| gmm |" in out and (tmp_path / "c.png").is_file()
    assert main(["compare", str(normal.path)]) == 2


def test_compare_a_sweep_folder_lists_its_runs(two_runs, tmp_path, capsys):
    normal, _ = two_runs
    assert main(["compare", str(normal.path.parent), "-o", str(tmp_path / "c.png")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "run |" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| gmm", "| normal"]


def test_gmm_run_reports_clustering_and_draws_its_components(two_runs):
    normal, gmm = two_runs
    report = load_run(gmm.path).evaluate(2)
    assert 0.0 < report["cluster_accuracy"] <= 1.0 and 0.0 <= report["cluster_nmi"] <= 1.0
    assert "cluster_accuracy" not in load_run(normal.path).evaluate(2)
    assert (gmm.path / "latent.png").stat().st_size > 0
    components = gmm.model.prior.components()
    assert [tuple(t.shape) for t in components] == [(3,), (3, 2), (3, 2)]
