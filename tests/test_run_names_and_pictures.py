"""Runs on tables and arrays: streamed (N, H, W) arrays, data options kept with data=..., column and label names
on the pictures and sampled CSVs, the cluster panel on vector data, and how samples were drawn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from pyro_vae import load_config, train
from pyro_vae import plots
from pyro_vae.cli import main

TINY = ["train.epochs=1", "train.progress=false", "train.eval_samples=2", "model.latent_dim=2",
        "model.network.hidden_dims=[8]", "train.num_images=4"]


def test_a_streamed_n_h_w_array_gets_its_channel_axis(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 6, 6)).astype(np.float32))
    config = load_config(None, ["data.type=array", f"data.path={tmp_path / 'x.npy'}", "data.in_memory=false",
                                "data.num_workers=0", "data.binarize=dynamic", *TINY])
    run = train(config, tmp_path / "run")
    assert run.data().shape == (1, 6, 6) and (tmp_path / "run" / "samples.png").is_file()
    assert main(["sample", str(tmp_path / "run"), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0


def test_python_data_keeps_the_options_that_apply_and_names_the_others(tmp_path):
    config = load_config(None, ["data.type=table", "data.path=unused.csv", "data.standardize=true",
                                "data.label_column=kind", "model.likelihood=gaussian", *TINY])
    x = torch.randn(50, 3) * 5 + 2
    with pytest.warns(UserWarning, match=r"data\.path, data\.label_column: ignored with data=\.\.\."):
        run = train(config, tmp_path / "run", data=x)
    assert run.config.data.type == "python" and run.standardizer is not None


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{['cat', 'dog'][i % 2]}" for i, (a, b) in enumerate(rng.normal(size=(40, 2)))]
    path = tmp_path / "pets.csv"
    path.write_text("height,weight,species\n" + "\n".join(rows) + "\n")
    return path


def test_names_label_the_vector_pictures_and_sampled_csv(table, tmp_path, monkeypatch):
    seen = {}
    for name in ("save_feature_scatter", "save_feature_histograms", "save_latent"):
        original = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, _n=name, _o=original, **k: (seen.__setitem__(_n, k), _o(*a, **k)))
    config = load_config(None, ["data.type=table", f"data.path={table}", "data.label_column=species",
                                "model.likelihood=gaussian", "model.likelihood.learn=shared",
                                "model.prior=gmm", "model.prior.num_components=2", *TINY])
    train(config, tmp_path / "run")
    assert seen["save_feature_scatter"]["names"] == ["height", "weight"]
    assert seen["save_feature_histograms"]["drawn"] == "z ~ p(z)"
    assert seen["save_latent"]["label_name"] == "species" and seen["save_latent"]["class_names"] == ["cat", "dog"]
    assert seen["save_latent"]["clusters"] is not None and seen["save_latent"]["components"] is not None
    assert main(["sample", str(tmp_path / "run"), "-n", "3", "-o", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "height,weight"


def test_list_into_a_closed_pipe_exits_quietly():
    command = f"{sys.executable} -m pyro_vae list | head -1; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stderr == "" and done.stdout.strip() == "models:"
