"""Every tutorial notebook runs top to bottom at the CI budget (PYRO_VAE_TUTORIAL_FAST=1), in a scratch folder.

The notebooks are built from their text twins ``tutorials/NN_name.py`` (the source of truth), so a test
also catches a ``.py`` edited without rebuilding: the committed ``.ipynb`` must hold the same cell sources.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from conftest import MNIST_RAW, REPO  # noqa: E402

TUTORIALS = REPO / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
NEEDS_MNIST = "NEEDS_MNIST"  # a tutorial that reads the real MNIST says so in its text


def _builder():
    spec = importlib.util.spec_from_file_location("tutorials_build", TUTORIALS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_tutorials():
    assert len(SOURCES) >= 1
    for src in SOURCES:
        assert src.with_suffix(".ipynb").is_file(), f"{src.name}: run `python tutorials/build.py --execute`"


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_committed_notebook_matches_its_text_twin(source):
    built = _builder().read_percent(source)
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in built.cells]
    assert source.with_suffix(".ipynb").stat().st_size < 1_500_000


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_tutorial_executes(source, tmp_path, monkeypatch):
    if NEEDS_MNIST in source.read_text() and not (MNIST_RAW / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs the real MNIST test set")
    monkeypatch.setenv("PYRO_VAE_TUTORIAL_FAST", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = _builder().read_percent(source)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, f"{source.name}: no figure was rendered"
    assert not list(tmp_path.glob("thumbnails/*")), "CI runs must not write thumbnails"
