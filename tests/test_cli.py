"""The command line end to end on a tiny budget."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, tiny_overrides
from pyro_vae.cli import build_parser, main, parse_args

RUN_FILES = {"config.yaml", "model.pt", "metrics.jsonl", "samples.png", "reconstructions.png", "latent.png",
             "elbo.png"}


def test_train_sample_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(REPO / "configs" / "digits_vae.yaml"), *tiny_overrides(), "--out", str(out)]) == 0
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert main(["sample", str(out), "-n", "9", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--num-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_elbo"] < 0 and result["num_samples"] == 5


def test_train_without_config_file_takes_overrides(tmp_path):
    assert main(["train", *tiny_overrides("train.epochs=1"), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "model.pt").is_file()


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["train", *tiny_overrides("model.prior=wishart"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "model.prior.type" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # a config error writes nothing


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *tiny_overrides("train.epochs=1"), "--out", str(out)]) == 0
    before = (out / "model.pt").read_bytes()
    assert main(["train", *tiny_overrides("train.epochs=1"), "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "model.pt").read_bytes() == before


def test_python_dash_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pyro_vae", "list"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "bernoulli" in proc.stdout and "digits" in proc.stdout


def test_version():
    import pyro_vae

    proc = subprocess.run([sys.executable, "-m", "pyro_vae", "--version"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == f"pyro-vae {pyro_vae.__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["--version"]])
def test_help_does_not_import_torch(argv):
    """--help and --version answer without importing torch, Pyro or matplotlib (well under a second)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pyro_vae", *argv], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0 and "pyro-vae" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pyro_vae.cli" in imported
    assert not imported & {"torch", "pyro", "matplotlib", "numpy"}


@pytest.mark.parametrize("argv, config, out, overrides", [
    (["train", "--out", "D", "train.epochs=2"], None, "D", ["train.epochs=2"]),
    (["train", "train.epochs=2", "--out", "D"], None, "D", ["train.epochs=2"]),
    (["train", "a=b", "--out", "D", "c=d"], None, "D", ["a=b", "c=d"]),
    (["train", "configs/x.yaml", "--out", "D", "a=b", "c=d"], "configs/x.yaml", "D", ["a=b", "c=d"]),
    (["train", "configs/x.yaml", "a=b", "--out", "D", "c=d"], "configs/x.yaml", "D", ["a=b", "c=d"]),
    (["train", "--resume", "R", "train.epochs=5"], None, None, ["train.epochs=5"]),
])
def test_overrides_before_or_after_options(argv, config, out, overrides):
    args = parse_args(build_parser(), argv)
    assert (args.config, args.out, args.overrides) == (config, out, overrides)


@pytest.mark.parametrize("argv", [["train", "--out", "D", "--epochs", "3"], ["sample", "R", "a=b"]])
def test_unknown_arguments_are_still_refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(build_parser(), argv)
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_overrides_after_options_train(tmp_path):
    out = tmp_path / "r"
    assert main(["train", str(REPO / "configs" / "digits_vae.yaml"), "--out", str(out),
                 *tiny_overrides("train.epochs=1", "model.latent_dim=3")]) == 0
    assert "latent_dim: 3" in (out / "config.yaml").read_text()


def test_sample_without_output_keeps_the_runs_samples(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *tiny_overrides("train.epochs=1"), "--out", str(out)]) == 0
    before = (out / "samples.png").read_bytes()
    capsys.readouterr()
    assert main(["sample", str(out), "-n", "4"]) == 0
    assert main(["sample", str(out), "-n", "4"]) == 0  # twice in the same second: two files
    assert (out / "samples.png").read_bytes() == before
    written = sorted(out.glob("samples-4-*.png"))
    assert len(written) == 2 and all(p.stat().st_size > 0 for p in written)
    said = capsys.readouterr().out
    assert all(str(p) in said for p in written)
