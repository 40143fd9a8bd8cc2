"""benchmarks/imputation.py: its MCAR masks, its RMSE over removed cells and its report table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("imputation_bench", REPO / "benchmarks" / "imputation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_mcar_removes_about_the_rate_and_every_row_keeps_a_cell(bench):
    removed = bench.mcar((2000, 10), 0.5, np.random.default_rng(0))
    assert abs(removed.mean() - 0.5) < 0.02 and not removed.all(1).any()
    assert not bench.mcar((500, 2), 0.9, np.random.default_rng(1)).all(1).any()


def test_rmse_is_over_the_removed_cells_only(bench):
    truth, guess = np.zeros((2, 2)), np.array([[3.0, 100.0], [4.0, 100.0]])
    assert bench.rmse(guess, truth, np.array([[True, False], [True, False]])) == pytest.approx(np.sqrt(12.5))


def test_report_averages_the_seeds(bench):
    results = {f"wine/0.5/{s}": {"mean": 1.0, "knn": 0.9, "iterative": 0.8, "pyro_vae": 0.7 + 0.1 * s}
               for s in bench.SEEDS}
    results["choice/wine/0.5"] = "d5_h64"
    table = bench.report(results)
    assert "| wine | 50% | 1.000 ± 0.000 | 0.900 ± 0.000 | 0.800 ± 0.000 | 0.800 ± 0.082 (d5_h64) |" in table
