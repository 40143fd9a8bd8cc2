"""Bad input through the command line: each is exit code 2 with one specific message, no traceback,
and nothing written."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from pyro_vae.cli import main
from pyro_vae.errors import DataError
from pyro_vae.train.checkpoint import save_checkpoint

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root, images: np.ndarray, labels: np.ndarray) -> None:
    root.mkdir(exist_ok=True)
    (root / IMAGES).write_bytes(gzip.compress(idx_bytes(images, 2051)))
    (root / LABELS).write_bytes(gzip.compress(idx_bytes(labels, 2049)))


def fails(capsys, argv, *phrases) -> str:
    """``pyro-vae ARGV`` exits 2 and prints one ``pyro-vae: error:`` line holding every phrase."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pyro-vae: error: ") and "Traceback" not in err and err.count("\n") == 1, err
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
    ("model.network.hidden_dims=[-5]", ["model.network.hidden_dims: got [-5]", "integers >= 1"]),
    ("model.network.hidden_dims=[0]", ["model.network.hidden_dims: got [0]", "integers >= 1"]),
    ("model.network.hidden_dims=[100000, 100000]", ["parameters need about", "reduce model.network sizes"]),
    ("model.network.hidden_dims=" + "[" * 3000 + "]" * 3000, ["nested too deeply"]),
    (".".join(["model"] * 3000) + "=1", ["3000 levels of keys"]),
    ("train.divergence_nats=0", ["train.divergence_nats: got 0"]),
])
def test_invalid_config_keys_and_values(tmp_path, capsys, override, phrases):
    fails(capsys, train_argv(tmp_path, override), *phrases)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("channels", ["[0, 0]", "[-1, 4]", "[8]"])
def test_invalid_conv_channels(tmp_path, capsys, channels):
    fails(capsys, ["train", "model.network=conv", f"model.network.channels={channels}", "--out", str(tmp_path / "r")],
          "model.network.channels: got", "two integers >= 1")


def test_missing_and_malformed_config_files(tmp_path, capsys):
    fails(capsys, ["train", str(tmp_path / "nope.yaml")], "nope.yaml", "does not exist")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    fails(capsys, ["train", str(tmp_path / "bad.yaml")], "bad.yaml", "not valid YAML", "at line 2, column 1")
    (tmp_path / "indent.yaml").write_text("train:\n  epochs: 2\n lr: 1\n")
    fails(capsys, ["train", str(tmp_path / "indent.yaml")], "not valid YAML", "at line 3, column 2")
    (tmp_path / "deep.yaml").write_text("seed: " + "[" * 5000 + "]" * 5000 + "\n")
    fails(capsys, ["train", str(tmp_path / "deep.yaml")], "nested too deeply")
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
    stream = bytearray(gzip.compress(whole))
    stream[len(stream) // 2] ^= 0xFF  # corrupted inside the deflate stream (zlib.error)
    (root / IMAGES).write_bytes(bytes(stream))
    fails(capsys, mnist_argv(tmp_path, root), IMAGES, "cannot read IDX file")
    huge = b"\x00\x00\x08\x03" + (2 ** 31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")  # 2**64: np.prod overflows
    (root / IMAGES).write_bytes(gzip.compress(huge + whole[16:]))
    fails(capsys, mnist_argv(tmp_path, root), "IDX header claims dimensions [2147483648, 2147483648, 4]",
          "16 GiB limit")


def test_a_gzip_bomb_costs_at_most_the_size_its_header_states(tmp_path, capsys):
    import tracemalloc

    from pyro_vae.data.idx import read_idx

    root = tmp_path / "mnist"
    write_mnist(root, np.zeros((20, 28, 28)), np.zeros(20))
    header = idx_bytes(np.zeros((20, 28, 28)), 2051)[:16]
    compressor = gzip.GzipFile(root / IMAGES, "wb")  # 15,680 bytes promised, 200 MB delivered (~200 KB on disk)
    compressor.write(header)
    for _ in range(200):
        compressor.write(bytes(1 << 20))
    compressor.close()
    assert (root / IMAGES).stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(DataError, match="truncated or padded IDX file"):
        read_idx(root / IMAGES)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, peak  # bytes: the promised size and the decompressor's buffers, not 200 MB
    fails(capsys, mnist_argv(tmp_path, root), "truncated or padded IDX file")


def test_data_root_empty_or_unreadable(tmp_path, capsys, monkeypatch):
    fails(capsys, train_argv(tmp_path, "data.type=mnist", "data.root="), "data.root: empty path")
    root = tmp_path / "mnist"
    write_mnist(root, np.zeros((20, 28, 28)), np.zeros(20))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(root) else real_access(p, mode))
    fails(capsys, mnist_argv(tmp_path, root), "is not readable (permission denied)")
    monkeypatch.undo()

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_file", denied)  # a sub-folder that cannot be searched (as root: simulated)
    fails(capsys, mnist_argv(tmp_path, root), "cannot look for IDX files (Permission denied)")
    assert not (tmp_path / "run").exists()


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
    payload.pop("format")
    save_checkpoint(payload, run / "model.pt")  # with a valid digest: the structure is what is wrong
    fails(capsys, ["sample", str(run)], "inconsistent checkpoint")


def test_resume_errors(trained, tmp_path, capsys):
    run = broken_copy(trained, tmp_path)
    fails(capsys, ["train", "--resume", str(run)], "already finished its 1 epochs", "train.epochs=N")
    fails(capsys, ["train", "--resume", str(run), "model.latent_dim=4"],
          "model.latent_dim: cannot be changed when resuming")
    fails(capsys, ["train", "configs/digits_vae.yaml", "--resume", str(run)], "--resume RUN_DIR", "no CONFIG or --out")
    shutil.copy(run / "best.pt", run / "model.pt")
    fails(capsys, ["train", "--resume", str(run), "train.epochs=2"], "holds weights only")



def test_output_paths_and_sizes(trained, tmp_path, capsys, monkeypatch):
    fails(capsys, ["sample", str(trained), "-o", str(tmp_path / "missing" / "s.png")],
          "folder", "missing", "does not exist")
    fails(capsys, ["sample", str(trained), "-o", str(tmp_path / "s.xyz")], "unknown image format '.xyz'", ".png")
    fails(capsys, ["sample", str(trained), "-o", str(tmp_path)], "is a folder")
    fails(capsys, ["sample", str(trained), "-n", "2000000000"], "-n 2000000000: needs about", "give -n <=")
    fails(capsys, ["compare", str(trained), str(trained), "-o", str(tmp_path / "missing" / "c.png")],
          "does not exist")
    fails(capsys, ["compare", str(trained), str(trained), "-o", str(tmp_path / "c.docx")], "unknown image format")
    assert main(["sample", str(trained), "-n", "5000", "-o", str(tmp_path / "many.png")]) == 0  # under the limit: written
    import pyro_vae.cli as cli

    monkeypatch.setattr(cli, "PROGRESS_SAMPLES", 100)  # a "long" evaluation: an estimate and a progress bar
    assert main(["evaluate", str(trained), "--num-samples", "20", "--json"]) == 0
    err = capsys.readouterr().err
    assert "importance samples for each of" in err and "log p(x), K=20" in err and "100%" in err


# --- own-data files: each bad file one line before anything is written; unusual but valid ones load ----------

def _png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def _png_header_claiming(path: Path, height: int, width: int) -> None:
    """A PNG whose header claims ``height`` × ``width`` pixels (its data holds 8 × 8): a decompression bomb."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def _image_folder(tmp_path: Path, extra=None) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        _png(folder / f"{i}.png", np.full((8, 8), 40 * i, np.uint8))
    if extra is not None:
        extra(folder)
    return folder


def _array_file(tmp_path: Path, make) -> Path:
    path = tmp_path / "data.npy"
    make(path)
    return path


def _animated(folder: Path) -> None:
    from PIL import Image

    frames = [Image.new("L", (8, 8), v) for v in (0, 128, 255)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])


def _npz_cut(path: Path) -> None:
    np.savez(path.with_suffix(".npz"), x=np.zeros((20, 3)))
    raw = path.with_suffix(".npz").read_bytes()
    path.with_suffix(".npz").write_bytes(raw[: len(raw) // 2])


ARRAY_CASES = [
    (lambda p: np.save(p, np.zeros((0, 3), np.float32)), ".npy", ["shape (0, 3) holds no datapoints"]),
    (lambda p: np.save(p, np.zeros((10, 0), np.float32)), ".npy", ["datapoints of shape (0,) hold no values"]),
    (lambda p: np.save(p, np.float32(3)), ".npy", ["a single value (shape ())"]),
    (lambda p: np.save(p, np.zeros((4, 2, 2, 2, 2), np.float32)), ".npy", ["shape (4, 2, 2, 2, 2)", "(N, D) vectors"]),
    (lambda p: np.save(p, np.zeros((1, 3), np.float32)), ".npy", ["1 datapoints leave none for training"]),
    (lambda p: p.write_bytes(b""), ".npy", ["cannot read as a .npy array", "expected a whole np.save file"]),
    (_npz_cut, ".npz", ["cannot read as an .npz archive", "BadZipFile"]),
    (lambda p: p.symlink_to(p), ".npy", ["data.path", "loop of symbolic links"]),
]


@pytest.mark.parametrize("make, suffix, phrases", ARRAY_CASES)
def test_bad_array_files_are_one_line(tmp_path, capsys, make, suffix, phrases):
    path = _array_file(tmp_path, make).with_suffix(suffix)
    fails(capsys, train_argv(tmp_path, "data.type=array", f"data.path={path}"), *phrases)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, options, phrases", [
    (_animated, [], ["anim.gif: an animation of 3 frames", "expected still images"]),
    (lambda f: _png_header_claiming(f / "bomb.png", 20000, 20000), [], ["bomb.png: over the image decoder's limit",
                                                                         "nothing was decoded"]),
    (lambda f: _png_header_claiming(f / "bomb.png", 12000, 12000), ["data.size=[8,8]"], ["over the image decoder's"]),
    (lambda f: (f / "loop").symlink_to(f / "loop"), ["data.path={root}/loop"], ["loop of symbolic links"]),
])
def test_bad_image_folders_are_one_line(tmp_path, capsys, extra, options, phrases):
    root = _image_folder(tmp_path, extra)
    options = [o.format(root=root) for o in options]
    fails(capsys, train_argv(tmp_path, "data.type=image_folder", f"data.path={root}", "data.mode=grayscale", *options),
          *phrases)
    assert not (tmp_path / "run").exists()


def test_unusual_but_valid_files_load(tmp_path):
    """Big-endian arrays load as native; a 16-bit PNG among 8-bit ones is converted to the 8-bit scale; a CSV
    header's byte-order mark is no part of the first column's name."""
    from pyro_vae.config.run import load_config
    from pyro_vae.data import load_data

    x = np.random.default_rng(0).random((20, 3))
    np.save(tmp_path / "big.npy", x.astype(">f4"))
    data = load_data(load_config(None, ["data.type=array", f"data.path={tmp_path / 'big.npy'}"]).data, 0)
    assert torch.allclose(torch.cat([data.train_x, data.test_x]).sort(0).values,
                          torch.from_numpy(x.astype(np.float32)).sort(0).values)
    root = _image_folder(tmp_path, lambda f: _png(f / "deep.png", np.full((8, 8), 65535, np.uint16)))
    data = load_data(load_config(None, ["data.type=image_folder", f"data.path={root}", "data.mode=grayscale"]).data, 0)
    assert float(torch.cat([data.train_x, data.test_x]).max()) == 1.0  # 65535 -> 255 -> 1 (scaled)
    (tmp_path / "bom.csv").write_text("\ufeffa,b\n" + "".join(f"{i % 2},{i % 3 / 2}\n" for i in range(20)),
                                      encoding="utf-8")
    data = load_data(load_config(None, ["data.type=table", f"data.path={tmp_path / 'bom.csv'}",
                                        "data.feature_columns=[a]"]).data, 0)
    assert data.shape == (1,)


@pytest.mark.parametrize("text, options, phrases", [
    ("a,b\n1,2\n3,4\n", ["data.delimiter=';;'"], ["data.delimiter: got ';;'", "expected one character"]),
    ("a,b\n" + "1,2\n" * 9 + "1e39,2\n", [], ["column 'a', line 11: '1e39' overflows float32"]),
])
def test_bad_tables_are_one_line(tmp_path, capsys, text, options, phrases):
    (tmp_path / "t.csv").write_text(text)
    fails(capsys, train_argv(tmp_path, "data.type=table", f"data.path={tmp_path / 't.csv'}", *options), *phrases)


class _Ragged(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.zeros(4 if i % 2 else 5)


@pytest.mark.parametrize("data, phrase", [
    (torch.eye(20, 4).to_sparse(), "a sparse_coo tensor; expected a dense tensor"),
    (torch.empty(20, 4, device="meta"), "a tensor on the meta device holds no values"),
    (torch.zeros(20, 4, dtype=torch.complex64), "holds complex64 values; expected numbers"),
    (torch.zeros(0, 4), "holds no datapoints"),
    (torch.zeros(20, 0), "hold no values"),
    (_Ragged(), "item 1 has shape (4,), item 0 (5,)"),
])
def test_bad_python_data_is_one_data_error(tmp_path, data, phrase):
    from pyro_vae import train

    with pytest.raises(DataError, match=None) as raised:
        train(None, tmp_path / "run", tiny_overrides(), data=data)
    assert phrase in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "run").exists()


# --- configs and sizes -------------------------------------------------------------------------------------

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_config_files_that_expand_or_grow_are_refused(tmp_path, capsys):
    (tmp_path / "laughs.yaml").write_text(BILLION_LAUGHS)
    fails(capsys, ["train", str(tmp_path / "laughs.yaml")], "laughs.yaml", "expands to more than 100,000 values")
    (tmp_path / "big.yaml").write_text("# padding\n" * 500_000)
    fails(capsys, ["train", str(tmp_path / "big.yaml")], "big.yaml", "a config file is at most")


def test_numbers_parse_strictly_and_alike_in_yaml_and_overrides(tmp_path, capsys):
    from pyro_vae.config.run import load_config

    (tmp_path / "c.yaml").write_text("train: {lr: 3e-3, epochs: 2}\nmodel: {likelihood: {type: gaussian, sigma: 1e-1}}\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.train.lr == 3e-3 == load_config(None, ["train.lr=3e-3"]).train.lr
    assert config.model.likelihood.sigma == 0.1
    for override, phrase in [("train.epochs=0x10", "train.epochs: expected an integer, got '0x10'"),
                             ("train.epochs=1_0", "expected an integer, got '1_0'"),
                             ("train.lr=1e400", "train.lr: expected a finite number"),
                             ("train.lr=.inf", "train.lr: expected a finite number"),
                             ("train.epochs.x=1", "train.epochs is not a mapping"),
                             ("model.prior.type.x=1", "model.prior.type: expected a string")]:
        fails(capsys, train_argv(tmp_path, override), phrase)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides, phrases", [
    (["train.objective.num_particles=100000000"], ["train.objective.num_particles=100000000: needs about",
                                                   "lower train.batch_size or train.objective.num_particles"]),
    (["train.objective=iwae", "train.objective.num_particles=100000000"], ["needs about", "PYRO_VAE_MEMORY_LIMIT"]),
    (["model.type=m2", "train.objective=enum", "data.labeled=20", "data.labeled_per_batch=100000000"],
     ["+ data.labeled_per_batch=100000000: needs about"]),
    (["train.eval_samples=100000000"], ["train.eval_samples=100000000: each epoch's held-out ELBO would decode"]),
    (["model.type=vade", "model.prior=gmm", "model.prior.num_components=500", "data.limit=100"],
     ["model.prior.num_components=500: more mixture components than the 90 training points"]),
])
def test_sizes_that_scale_memory_are_checked_before_training(tmp_path, capsys, overrides, phrases):
    fails(capsys, train_argv(tmp_path, *overrides), *phrases)
    assert not (tmp_path / "run").exists()
