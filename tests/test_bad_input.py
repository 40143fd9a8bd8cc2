"""Bad input through the command line: each is exit code 2 with one specific message, no traceback,
and nothing written."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from pyro_vae.cli import main

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root, images: np.ndarray, labels: np.ndarray) -> None:
    root.mkdir(exist_ok=True)
    (root / IMAGES).write_bytes(gzip.compress(idx_bytes(images, 2051)))
    (root / LABELS).write_bytes(gzip.compress(idx_bytes(labels, 2049)))


def fails(capsys, argv, *phrases) -> str:
    """``pyro-vae ARGV`` exits 2 and prints one ``pyro-vae: error:`` message holding every phrase."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pyro-vae: error: ") and "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err
    return err


def train_argv(tmp_path, *overrides):
    return ["train", *tiny_overrides(*overrides), "--out", str(tmp_path / "run")]


@pytest.mark.parametrize("override, phrases", [
    ("model.bogus=1", ["model.bogus: unknown key", "allowed:"]),
    ("bogus=1", ["bogus: unknown key"]),
    ("train.epochs=0", ["train.epochs: got 0", "an integer >= 1"]),
    ("train.lr=fast", ["train.lr: expected a number, got 'fast'"]),
    ("train.engine=gpu", ["train.engine: got 'gpu'", "allowed: auto, torch, svi"]),
    ("data.test_fraction=1.5", ["data.test_fraction: got 1.5", "(0, 1)"]),
    ("model.likelihood=zipf", ["model.likelihood.type: unknown likelihood 'zipf'"]),
    ("seed=-1", ["seed: got -1", "[0, 2**32)"]),
    ("train.epochs=" + "9" * 5000, ["train.epochs: expected an integer"]),
    ("train=5", ["train: expected a mapping"]),
])
def test_invalid_config_keys_and_values(tmp_path, capsys, override, phrases):
    fails(capsys, train_argv(tmp_path, override), *phrases)
    assert not (tmp_path / "run").exists()


def test_missing_and_malformed_config_files(tmp_path, capsys):
    fails(capsys, ["train", str(tmp_path / "nope.yaml")], "nope.yaml", "does not exist")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    fails(capsys, ["train", str(tmp_path / "bad.yaml")], "bad.yaml", "not valid YAML")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    fails(capsys, ["train", str(tmp_path / "list.yaml")], "expected a mapping at the top level")


def mnist_argv(tmp_path, root):
    return train_argv(tmp_path, "data.type=mnist", f"data.root={root}", "data.split=test")


def test_missing_data_folder_and_files(tmp_path, capsys):
    fails(capsys, mnist_argv(tmp_path, tmp_path / "absent"), "data.root", "does not exist")
    (tmp_path / "empty").mkdir()
    fails(capsys, mnist_argv(tmp_path, tmp_path / "empty"), "no IDX file t10k-images-idx3-ubyte[.gz]")
    assert not (tmp_path / "run").exists()


def test_truncated_and_corrupt_idx_files(tmp_path, capsys):
    root = tmp_path / "mnist"
    write_mnist(root, np.zeros((20, 28, 28)), np.zeros(20))
    whole = idx_bytes(np.random.default_rng(0).integers(0, 256, (20, 28, 28)), 2051)
    (root / IMAGES).write_bytes(gzip.compress(whole[: len(whole) // 2]))  # a download cut in half
    fails(capsys, mnist_argv(tmp_path, root), IMAGES, "truncated or padded IDX file", "header says")
    (root / IMAGES).write_bytes(gzip.compress(whole)[:1000])  # the gzip stream itself cut off
    fails(capsys, mnist_argv(tmp_path, root), IMAGES, "cannot read IDX file")
    (root / IMAGES).write_bytes(gzip.compress(b"\x00\x00\x08\x0d" + whole[4:]))  # float IDX, not ubyte
    fails(capsys, mnist_argv(tmp_path, root), "not an unsigned-byte IDX file")
    (root / IMAGES).write_bytes(gzip.compress(b"\x00\x00"))
    fails(capsys, mnist_argv(tmp_path, root), "truncated IDX file (2 bytes")


def test_wrong_image_size(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", np.zeros((20, 32, 32)), np.zeros(20))
    fails(capsys, mnist_argv(tmp_path, tmp_path / "mnist"), "images of shape (32, 32), expected (28, 28)")


def test_empty_datasets(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", np.zeros((0, 28, 28)), np.zeros(0))
    fails(capsys, mnist_argv(tmp_path, tmp_path / "mnist"), "holds no images (empty dataset)")
    fails(capsys, train_argv(tmp_path, "data.limit=1"), "1 images leave none for training")


def test_labels_out_of_range_and_mismatched(tmp_path, capsys):
    labels = np.arange(20) % 10
    labels[7] = 12
    write_mnist(tmp_path / "mnist", np.zeros((20, 28, 28)), labels)
    fails(capsys, mnist_argv(tmp_path, tmp_path / "mnist"), "label 12 out of range 0..9")
    write_mnist(tmp_path / "mnist", np.zeros((20, 28, 28)), np.zeros(19))
    fails(capsys, mnist_argv(tmp_path, tmp_path / "mnist"), "19 labels for 20 images")


def test_data_outside_the_likelihood_range(tmp_path, capsys):
    fails(capsys, train_argv(tmp_path, "data.scale=false", "data.binarize=none"),
          "bernoulli likelihood needs pixel values in [0, 1], got range [0, 16]")
    assert not (tmp_path / "run").exists()  # checked before the run folder is created


@pytest.mark.parametrize("command", [["sample"], ["evaluate"], ["train", "--resume"]])
def test_a_folder_that_is_not_a_run(tmp_path, capsys, command):
    fails(capsys, [*command, str(tmp_path)], "not a run folder (no model.pt)")
    (tmp_path / "notes.txt").write_text("hello")
    fails(capsys, [*command, str(tmp_path / "notes.txt")], "not a folder")
    fails(capsys, [*command, str(tmp_path / "absent")], "not a folder")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *tiny_overrides("train.epochs=1", "data.limit=300"), "--out", str(out)]) == 0
    return out


def broken_copy(trained, tmp_path):
    run = tmp_path / "broken"
    shutil.copytree(trained, run)
    return run


def test_corrupt_checkpoints_are_named(trained, tmp_path, capsys):
    run = broken_copy(trained, tmp_path)
    whole = (trained / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(whole[: len(whole) // 2])
    fails(capsys, ["sample", str(run)], "model.pt: corrupt, truncated or not a checkpoint")
    (run / "model.pt").write_bytes(b"not a checkpoint at all")
    fails(capsys, ["evaluate", str(run)], "model.pt: corrupt, truncated or not a checkpoint")
    torch.save({"weights": torch.zeros(2)}, run / "model.pt")  # a torch file, but not ours
    fails(capsys, ["sample", str(run)], "not a pyro-vae checkpoint")
    payload = torch.load(trained / "model.pt", weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))  # weights that do not fit the config
    torch.save(payload, run / "model.pt")
    fails(capsys, ["sample", str(run)], "inconsistent checkpoint")


def test_resume_errors(trained, tmp_path, capsys):
    run = broken_copy(trained, tmp_path)
    fails(capsys, ["train", "--resume", str(run)], "already finished its 1 epochs", "train.epochs=N")
    fails(capsys, ["train", "--resume", str(run), "model.latent_dim=4"],
          "model.latent_dim: cannot be changed when resuming")
    fails(capsys, ["train", "configs/digits_vae.yaml", "--resume", str(run)], "--resume RUN_DIR", "no CONFIG or --out")
    shutil.copy(run / "best.pt", run / "model.pt")
    fails(capsys, ["train", "--resume", str(run), "train.epochs=2"], "holds weights only")

