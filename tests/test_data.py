"""Datasets: the embedded digits, raw IDX files, splits, binarization and clear errors."""

import gzip

import numpy as np
import pytest
import torch

from pyro_vae import DataError, load_config
from pyro_vae.data import load_data
from pyro_vae.data.idx import read_idx


def test_digits_split_and_range():
    data = load_data(load_config(None).data, seed=0)
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert data.train_x.shape[0] + data.test_x.shape[0] == 1797
    assert data.test_x.shape[0] == 180
    assert set(data.test_x.unique().tolist()) <= {0.0, 1.0}  # the test set is binarized once
    assert 0.0 <= float(data.train_x.min()) and float(data.train_x.max()) <= 1.0


def test_dynamic_binarization_draws_fresh_batches():
    data = load_data(load_config(None).data, seed=0)
    gen = torch.Generator().manual_seed(0)
    (a, _), (b, _) = next(data.batches("train", 256, False, gen)), next(data.batches("train", 256, False, gen))
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)


def test_split_is_seeded():
    cfg = load_config(None).data
    assert torch.equal(load_data(cfg, 1).test_x, load_data(cfg, 1).test_x)
    assert not torch.equal(load_data(cfg, 1).test_y, load_data(cfg, 2).test_y)


def test_mnist_from_raw_idx(mnist_root):
    config = load_config(None, ["data.type=mnist", f"data.root={mnist_root}", "data.split=test"]).data
    data = load_data(config, seed=0)
    assert data.train_x.shape == (9000, 1, 28, 28) and data.test_x.shape == (1000, 1, 28, 28)
    assert sorted(data.test_y.unique().tolist()) == list(range(10))


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_truncated_idx_is_named(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    images = np.zeros((3, 28, 28))
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path.write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(DataError, match="t10k-images.*truncated"):
        read_idx(path)


def test_wrong_image_size_and_missing_files(tmp_path):
    config = load_config(None, ["data.type=mnist", f"data.root={tmp_path}", "data.split=test"]).data
    with pytest.raises(DataError, match="no IDX file t10k-images"):
        load_data(config, 0)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 8, 8)), 2051)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4), 2049)
    with pytest.raises(DataError, match=r"shape \(8, 8\), expected \(28, 28\)"):
        load_data(config, 0)


def test_missing_root_folder(tmp_path):
    config = load_config(None, ["data.type=mnist", f"data.root={tmp_path / 'nope'}"]).data
    with pytest.raises(DataError, match="data.root.*does not exist"):
        load_data(config, 0)


def test_digits_read_without_scikit_learn_equal_load_digits():
    from sklearn.datasets import load_digits

    from pyro_vae.data.digits import read_digits

    images, labels = read_digits()
    reference = load_digits()
    assert torch.equal(images, torch.as_tensor(reference.images, dtype=torch.float32))
    assert torch.equal(labels, torch.as_tensor(reference.target, dtype=torch.long))
