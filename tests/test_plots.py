"""Image grids (pyro_vae.plots.make_grid/save_image) lay images out as torchvision's do, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_vae.plots import make_grid, save_image


@pytest.mark.parametrize("n, channels, nrow", [(1, 1, 8), (5, 1, 3), (16, 3, 8), (9, 1, 1), (10, 1, 4)])
def test_grid_matches_torchvision(n, channels, nrow, tmp_path):
    utils = pytest.importorskip("torchvision.utils")
    images = torch.rand(n, channels, 8, 6, generator=torch.Generator().manual_seed(n))
    assert torch.equal(make_grid(images, nrow=nrow, padding=2, pad_value=1.0),
                       utils.make_grid(images, nrow=nrow, padding=2, pad_value=1.0))
    from PIL import Image

    save_image(images, str(tmp_path / "ours.png"), nrow=nrow, padding=2, pad_value=1.0)
    utils.save_image(images, str(tmp_path / "theirs.png"), nrow=nrow, padding=2, pad_value=1.0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")), np.asarray(Image.open(tmp_path / "theirs.png")))


def test_grid_layout():
    images = torch.zeros(5, 1, 2, 3)
    grid = make_grid(images, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (3, 3 * (2 + 1) + 1, 2 * (3 + 1) + 1)  # 3 rows of 2, padding around each
    assert grid.sum() == grid.numel() - 3 * 5 * 2 * 3  # every pixel but the 5 images' is padding
