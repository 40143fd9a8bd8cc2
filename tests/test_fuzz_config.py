"""Fuzzing the config loader (hypothesis): any mapping, override or YAML text gives a RunConfig or a
ConfigError naming the problem — never another exception."""

from __future__ import annotations

import dataclasses
import gzip
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pyro_vae  # noqa: F401  (registers every component)
from pyro_vae.config.run import RunConfig, load_config
from pyro_vae.config.schema import from_dict, to_dict
from pyro_vae.errors import ConfigError
from pyro_vae.registry import DATASETS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS
from pyro_vae.train.config import TrainConfig


def _known_names():
    """Every option and component name the schema knows (so the fuzzer reaches deep into valid configs)."""
    names = {"seed", "data", "model", "train", "type"}
    for registry in (DATASETS, LIKELIHOODS, MODELS, NETWORKS, OBJECTIVES, PRIORS):
        names.update(registry.names())
        for entry in registry.entries():
            names.update(f.name for f in dataclasses.fields(entry.config_cls))
    names.update(f.name for f in dataclasses.fields(TrainConfig))
    return sorted(names)


NAMES = _known_names()
KEYS = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(NAMES),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
CONFIGS = st.dictionaries(st.sampled_from(["seed", "data", "model", "train"]) | KEYS, VALUES, max_size=5)
DOTTED = st.lists(st.sampled_from(NAMES) | st.text(max_size=5), min_size=1, max_size=4).map(".".join)
TEXT_VALUES = st.one_of(st.sampled_from(NAMES), st.text(max_size=12), st.integers().map(str),
                        st.floats().map(str), st.sampled_from(["null", "none", "[64, 32]", "{a: 1}", "1e999",
                                                               "9" * 5000, "true", "-", "[", "!!python/none"]))
OVERRIDES = st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", DOTTED, TEXT_VALUES), st.text(max_size=20)),
                     max_size=5)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _loads_or_names_the_problem(build):
    try:
        config = build()
    except ConfigError as e:
        assert str(e)  # a message, not an empty error
        return
    assert isinstance(config, RunConfig)
    assert from_dict(RunConfig, to_dict(config)) == config  # what loads also round-trips (config.yaml)


@FUZZ
@given(CONFIGS)
def test_any_mapping_is_a_config_or_a_config_error(data):
    _loads_or_names_the_problem(lambda: from_dict(RunConfig, data))


@FUZZ
@given(OVERRIDES)
def test_any_overrides_are_a_config_or_a_config_error(overrides):
    _loads_or_names_the_problem(lambda: load_config(None, overrides))


@FUZZ
@given(st.one_of(st.text(max_size=200), CONFIGS.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 st.sampled_from(["!!python/object/apply:os.system ['echo hi']", "a: [", "- 1\n- 2",
                                  "seed: " + "9" * 5000, "seed: !!float nan", "{", "model: {prior: [1]}"])))
def test_any_yaml_file_is_a_config_or_a_config_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        _loads_or_names_the_problem(lambda: load_config(path))


def test_python_tags_in_yaml_are_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    try:
        load_config(path)
    except ConfigError as e:
        assert "not valid YAML" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a python tag loaded")
    assert not marker.exists()


# --- network sizes, deep nesting: a model or a ConfigError -------------------------------------------------

SIZES = st.one_of(st.integers(-3, 24), st.integers(2 ** 31, 2 ** 62))  # tiny (fast to build) or absurd
SIZE_OVERRIDES = st.one_of(
    st.lists(SIZES, max_size=3).map(lambda d: [f"model.network.hidden_dims={d}"]),
    st.tuples(st.lists(SIZES, max_size=3), SIZES).map(
        lambda t: ["model.network=conv", f"model.network.channels={t[0]}", f"model.network.hidden_dim={t[1]}"]),
    st.lists(SIZES, max_size=2).map(lambda d: ["model.prior=flow", f"model.prior.hidden_dims={d}"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SIZE_OVERRIDES)
def test_any_network_size_builds_or_is_a_config_error(overrides):
    from pyro_vae.run import _build_model

    try:
        config = load_config(None, ["model.latent_dim=2", *overrides])
        model = _build_model(config, (1, 8, 8), 10)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert sum(p.numel() for p in model.parameters()) > 0


@settings(max_examples=20, deadline=None)
@given(st.one_of(st.integers(1, 64), st.integers(1000, 1500)), st.sampled_from(["[", "{a: "]), st.booleans())
def test_any_nesting_depth_is_a_config_or_a_config_error(depth, opener, as_key):
    closer = "]" if opener == "[" else "}"
    override = (".".join(["model"] * depth) + "=1" if as_key
                else "model.network.hidden_dims=" + opener * depth + "1" + closer * depth)
    _loads_or_names_the_problem(lambda: load_config(None, [override]))


# --- output paths: a path or an OutputError ------------------------------------------------------------------

PATH_PARTS = st.sampled_from(["", ".", "..", "/", "missing", "a.png", "b.xyz", "c.PDF", "/dev/null", "/proc",
                              "\x00", " ", "file.txt", "~"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(PATH_PARTS, st.text(max_size=6)), max_size=4).map("/".join))
def test_any_output_path_is_writable_or_an_output_error(tmp_path_factory, text):
    from pyro_vae.cli import _figure_formats, check_output_file
    from pyro_vae.errors import OutputError, PyroVAEError
    from pyro_vae.train.runfolder import check_out

    folder = tmp_path_factory.getbasetemp() / "paths"
    folder.mkdir(exist_ok=True)
    (folder / "file.txt").write_text("x")
    for relative in (text, str(folder / text)):
        try:
            out = check_output_file(relative, "-o", _figure_formats())
        except OutputError as e:
            assert str(e) and "\n" not in str(e)
        else:
            assert out.parent.is_dir() and not out.is_dir()
        try:
            check_out(relative)
        except PyroVAEError as e:  # OutputError, or RunDirError for a folder holding a run
            assert str(e) and "\n" not in str(e)


# --- checkpoint payloads and bytes: a payload or a RunDirError ----------------------------------------------

PAYLOAD_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS,
                                                                                   max_size=3))
PAYLOAD_KEYS = st.sampled_from(["state_dict", "config", "data_shape", "num_classes", "history", "trainer",
                                "trainer.epoch", "trainer.step", "trainer.batch", "trainer.partial",
                                "trainer.history", "trainer.generator", "trainer.optimizer", "history[0]",
                                "history[0].epoch", "history[0].test_elbo"])


def _small_payload():
    import torch

    row = {"epoch": 1, "step": 3, "train_elbo": -40.0, "test_elbo": -41.0, "seconds": 0.1}
    return {"state_dict": {"w": torch.ones(2)}, "config": {}, "data_shape": [1, 8, 8], "num_classes": 10,
            "history": [row], "trainer": {"optimizer": {"state": {}}, "epoch": 1, "step": 3, "history": [row],
                                          "batch": 0, "partial": [0.0, 0],
                                          "generator": torch.zeros(5, dtype=torch.uint8),
                                          "rng": {}}}


def _set(payload, key, value):
    node, parts = payload, key.replace("[0]", ".0").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(PAYLOAD_KEYS, PAYLOAD_VALUES), min_size=1, max_size=3))
def test_any_checkpoint_payload_loads_valid_or_is_refused(tmp_path_factory, changes):
    import copy

    from pyro_vae.errors import RunDirError
    from pyro_vae.train.checkpoint import check_payload, encode, load_checkpoint

    payload = copy.deepcopy(_small_payload())
    for key, value in changes:
        try:
            _set(payload, key, value)
        except (KeyError, IndexError, TypeError, ValueError):  # the path no longer exists after an earlier change
            pass
    path = tmp_path_factory.getbasetemp() / "fuzz.pt"
    path.write_bytes(encode(payload))
    try:
        loaded = load_checkpoint(path)
    except RunDirError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert check_payload(loaded) is None


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_are_a_checkpoint_or_a_run_dir_error(tmp_path_factory, data, zipped):
    import io
    import zipfile

    from pyro_vae.errors import RunDirError
    from pyro_vae.train.checkpoint import load_checkpoint

    if zipped:  # a zip archive (what torch files are) holding random members
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/data.pkl", data)
            archive.writestr("archive/version", b"3\n")
        data = buffer.getvalue()
    path = tmp_path_factory.getbasetemp() / "bytes.pt"
    path.write_bytes(data)
    try:
        load_checkpoint(path)
    except RunDirError as e:
        assert str(e) and "\n" not in str(e)


# --- IDX headers: an array or a DataError -------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.sampled_from([2049, 2051, 2049 + 1, 0, 2 ** 32 - 1]), st.lists(st.integers(0, 2 ** 32 - 1), max_size=4),
       st.integers(0, 64), st.booleans(), st.integers(0, 3))
@example(magic=2051, dims=[0, 3_036_988_439, 3_037_012_561], extra=0, gz=False, cut=0)  # empty, unshapeable
def test_any_idx_header_is_an_array_or_a_data_error(tmp_path_factory, magic, dims, extra, gz, cut):
    from pyro_vae.data.idx import read_idx
    from pyro_vae.errors import DataError

    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    body = bytes(extra)
    raw = (header + body)[: len(header + body) - cut]
    path = tmp_path_factory.getbasetemp() / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    try:
        array = read_idx(path)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert array.size == len(raw) - 4 - 4 * array.ndim


# --- own-data files and Python data: a dataset or one DataError ---------------------------------------------

DTYPES = ["<f4", ">f4", "<f8", ">f8", "|u1", ">i4", "<i2", "|b1", "<c8", ">u2"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 5), max_size=5), st.sampled_from(DTYPES), st.integers(0, 64), st.sampled_from(["npy", "npz"]))
def test_any_array_file_is_a_dataset_or_a_data_error(tmp_path_factory, shape, dtype, cut, kind):
    """Any shape (empty, 0-d, 5-D), byte order or dtype, whole or cut short, in a .npy or an .npz."""
    import io

    import numpy as np

    from pyro_vae.data import load_data
    from pyro_vae.errors import DataError

    buffer = io.BytesIO()
    array = (np.arange(int(np.prod(shape))) % 2).astype(dtype).reshape(shape)
    (np.save if kind == "npy" else lambda f, a: np.savez(f, x=a))(buffer, array)
    raw = buffer.getvalue()
    path = tmp_path_factory.mktemp("arr") / f"x.{kind}"
    path.write_bytes(raw[: max(len(raw) - cut, 0)] if cut < 64 else b"")
    config = load_config(None, ["data.type=array", f"data.path={path}", "data.test_fraction=0.5"]).data
    try:
        data = load_data(config, 0)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert data.num_train >= 1 and data.num_test >= 1 and data.train_x.dtype == torch_float32()


def torch_float32():
    import torch

    return torch.float32


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 70000), st.integers(0, 70000), st.integers(1, 3))
def test_any_image_header_is_a_size_or_a_data_error(tmp_path_factory, height, width, frames):
    """Whatever size a header claims (up to 4.9e9 pixels) or frames it holds: refused from the header, never
    decoded beyond the decoder's limit."""
    import io
    import struct
    import zlib

    from PIL import Image

    from pyro_vae.data.image_folder import header_size
    from pyro_vae.errors import DataError

    buffer = io.BytesIO()
    images = [Image.new("L", (4, 4), 60 * i) for i in range(frames)]
    images[0].save(buffer, "PNG" if frames == 1 else "GIF", save_all=frames > 1, append_images=images[1:])
    raw = bytearray(buffer.getvalue())
    if frames == 1:  # rewrite the PNG header's size (and its CRC)
        raw[16:24] = struct.pack(">II", width, height)
        raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path = tmp_path_factory.mktemp("img") / ("x.png" if frames == 1 else "x.gif")
    path.write_bytes(bytes(raw))
    try:
        size = header_size(str(path))
    except DataError as e:
        assert str(e) and "\n" not in str(e)
        assert frames > 1 or height * width == 0 or height * width > Image.MAX_IMAGE_PIXELS or "cannot read" in str(e)
    else:
        assert frames == 1 and size == (height, width) and 0 < height * width <= Image.MAX_IMAGE_PIXELS


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["strided", "sparse", "meta", "complex", "int", "bool", "half"]),
       st.lists(st.integers(0, 4), min_size=0, max_size=4))
def test_any_python_tensor_is_a_dataset_or_a_data_error(layout, shape):
    import torch

    from pyro_vae.data.python import PythonDataConfig, from_python
    from pyro_vae.errors import DataError

    x = torch.arange(float(torch.Size(shape).numel())).reshape(shape)
    x = {"sparse": lambda t: t.to_sparse(), "meta": lambda t: t.to("meta"), "complex": lambda t: t.to(torch.complex64),
         "int": lambda t: t.long(), "bool": lambda t: t > 1, "half": lambda t: t.half()}.get(layout, lambda t: t)(x)
    try:
        data = from_python(x, PythonDataConfig(test_fraction=0.5), 0)
    except DataError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert data.num_train >= 1 and torch.isfinite(data.train_x).all()


# --- YAML aliases and links: bounded, refused ---------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12))
def test_any_alias_expansion_loads_within_the_bound_or_is_refused(tmp_path_factory, levels, width):
    """``levels`` anchors, each a list of ``width`` aliases of the one before: width**levels values."""
    from pyro_vae.config.loading import MAX_VALUES, read_yaml

    text = "l0: &l0 [x]\n" + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n"
                                      for i in range(1, levels + 1))
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_text(text)
    sizes = [2]  # values below each anchor, counting repeats: l0 is a list and its item
    for _ in range(levels):
        sizes.append(1 + width * sizes[-1])
    try:
        read_yaml(path)
    except ConfigError as e:
        assert "expands to more than" in str(e) and 1 + sum(sizes) > MAX_VALUES
    else:
        assert 1 + sum(sizes) <= MAX_VALUES


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["model.pt", "best.pt", "model.prev.pt", "config.yaml", "metrics.jsonl", "run.lock",
                        "samples.png", "latent.png", "anything.png", "tensorboard"]), st.booleans())
def test_any_link_where_a_run_writes_is_refused(tmp_path_factory, name, dangling):
    from pyro_vae.errors import OutputError
    from pyro_vae.train.runfolder import refuse_planted_links

    folder = tmp_path_factory.mktemp("run")
    target = folder.parent / f"{folder.name}-target"
    if not dangling:
        target.write_text("keep")
    (folder / name).symlink_to(target)
    try:
        refuse_planted_links(folder)
    except OutputError as e:
        assert name in str(e) and "symbolic link" in str(e)
    else:
        raise AssertionError(f"a link named {name} was not refused")
    assert dangling or target.read_text() == "keep"
