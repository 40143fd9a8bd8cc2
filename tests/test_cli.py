"""The command line end to end on a tiny budget."""

import json
import subprocess
import sys

from conftest import REPO, tiny_overrides
from pyro_vae.cli import main

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
