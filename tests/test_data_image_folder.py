"""data.type: image_folder: class sub-folders, grayscale/RGB, resizing, mixed sizes, the conv network."""

from __future__ import annotations

import pytest
import torch
from torchvision.io import write_png

from pyro_vae import load_config, train
from pyro_vae.data import RowData, load_data
from pyro_vae.errors import DataError


def images(folder, n, h=12, w=10, value=None):
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(n + h)
    for i in range(n):
        pixels = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8) if value is None else \
            torch.full((3, h, w), value, dtype=torch.uint8)
        write_png(pixels, str(folder / f"{i}.png"))


def config(path, *extra):
    return load_config(None, ["data.type=image_folder", f"data.path={path}", *extra])


def test_class_folders_give_labels(tmp_path):
    images(tmp_path / "cats", 6, value=0)
    images(tmp_path / "dogs", 6, value=255)
    data = load_data(config(tmp_path, "data.mode=grayscale").data, 0)
    assert isinstance(data, RowData) and data.in_memory and data.shape == (1, 12, 10) and data.num_classes == 2
    x, y = torch.cat([data.train_x, data.test_x]), torch.cat([data.train_y, data.test_y])
    assert torch.equal(x.flatten(1).mean(1), y.float())  # cats black (0), dogs white (1): scaled to [0, 1]


def test_flat_folder_rgb_resize(tmp_path):
    images(tmp_path, 5, h=12, w=10)
    data = load_data(config(tmp_path, "data.size=[8,6]", "data.test_fraction=0.2").data, 0)
    assert data.shape == (3, 8, 6) and data.num_classes == 0 and data.labels("test") is None
    assert float(data.test_x.max()) <= 1.0


def test_mixed_sizes_need_a_resize(tmp_path):
    images(tmp_path, 4, h=12, w=10)
    write_png(torch.zeros(3, 9, 9, dtype=torch.uint8), str(tmp_path / "odd.png"))
    with pytest.raises(DataError, match=r"9x9 pixels but .* is 12x10; images of mixed sizes need data.size"):
        load_data(config(tmp_path).data, 0)
    assert load_data(config(tmp_path, "data.size=[8,8]").data, 0).shape == (3, 8, 8)


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        load_data(config(tmp_path).data, 0)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: cannot read as an image"):
        load_data(config(tmp_path).data, 0)
    with pytest.raises(DataError, match="is not a folder"):
        load_data(config(tmp_path / "broken.png").data, 0)


@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_conv_network_trains_on_a_folder(tmp_path, in_memory):
    images(tmp_path / "data" / "a", 8)
    images(tmp_path / "data" / "b", 8)
    cfg = config(tmp_path / "data", "data.mode=grayscale", "data.size=[8,8]", f"data.in_memory={in_memory}",
                 "data.num_workers=0", "model.network.type=conv", "model.latent_dim=2", "train.epochs=1",
                 "train.batch_size=4", "train.progress=false", "train.eval_samples=2", "train.num_images=4")
    assert load_data(cfg.data, 0).in_memory is (in_memory == "true")
    run = train(cfg, tmp_path / "run")
    assert torch.isfinite(torch.tensor(run.history[0]["test_elbo"]))
    assert (tmp_path / "run" / "samples.png").is_file() and (tmp_path / "run" / "reconstructions.png").is_file()
