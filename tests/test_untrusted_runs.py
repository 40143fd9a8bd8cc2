"""A run folder is data, not code: loading, evaluating, sampling, comparing or resuming a run imports no module
its config names unless the user allowed it, and nothing the library writes into a run folder follows a link."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO
from pyro_vae import load_run, resume
from pyro_vae.cli import main
from pyro_vae.errors import ImportPathError, OutputError, RunDirError
from pyro_vae.nofollow import append_text, open_nofollow, write_bytes
from pyro_vae.train.checkpoint import LEGACY_FORMAT, load_checkpoint, save_checkpoint

EVIL = "import pathlib\n(pathlib.Path(__file__).resolve().parent / 'MARKER').write_text('ran')\nPrior = 3\n"
_names = itertools.count()


def one_line(capsys, argv, *phrases) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("pyro-vae: error: ") and err.count("\n") == 1, err
    assert all(p in err for p in phrases), err
    return err


def copy_run(tiny_run: Path, where: Path) -> Path:
    return Path(shutil.copytree(tiny_run, where))


def name_prior(run: Path, prior: str, legacy: bool = False) -> None:
    """Make every checkpoint of ``run`` name ``prior`` (an import path) as its model's prior; ``legacy``: the
    digest-less format of older versions."""
    for file in ("model.pt", "best.pt"):
        payload = load_checkpoint(run / file)
        payload["config"]["model"]["prior"] = {"type": prior}
        if legacy:
            payload["format"] = LEGACY_FORMAT
            torch.save(payload, run / file)
        else:
            save_checkpoint(payload, run / file)


@pytest.fixture
def planted(tiny_run, tmp_path, monkeypatch):
    """A downloaded run folder holding a module (a fresh name) that writes MARKER beside itself when imported,
    with the current folder importable (as under ``python -m``); ``(run, module name)``."""
    name = f"evilmod_{next(_names)}"
    run = copy_run(tiny_run, tmp_path / "downloaded")
    (run / f"{name}.py").write_text(EVIL)
    name_prior(run, f"{name}:Prior")
    monkeypatch.chdir(run)
    monkeypatch.syspath_prepend("")
    yield run, name
    sys.modules.pop(name, None)
    assert not (run / "MARKER").exists(), "the planted module ran"


@pytest.mark.parametrize("argv", [["evaluate", "."], ["sample", ".", "-n", "2"], ["train", "--resume", "."],
                                  ["compare", ".", ".", "-o", "c.png"]])
def test_no_command_imports_a_module_the_run_names(planted, capsys, argv):
    run, name = planted
    one_line(capsys, argv, f"names module {name!r}", "which is not imported", f"--import {name}")
    assert name not in sys.modules


@pytest.mark.parametrize("which", ["last", "best"])
def test_load_run_and_resume_import_nothing(planted, which):
    run, name = planted
    with pytest.raises(ImportPathError, match=rf"(model|best)\.pt: model.prior.type: names module '{name}'"):
        load_run(run, which=which)
    with pytest.raises(ImportPathError, match=f"imports=\\['{name}'\\]"):
        resume(run, ["train.epochs=2"])


def test_a_legacy_checkpoint_without_digest_imports_nothing(planted, capsys):
    run, name = planted
    name_prior(run, f"{name}:Prior", legacy=True)
    one_line(capsys, ["evaluate", "."], f"names module {name!r}")


def test_a_namespace_package_under_the_parent_folder_is_not_imported(tiny_run, tmp_path, monkeypatch, capsys):
    """``evaluate RUN`` from the parent, the config naming ``RUN.evilmod`` (a namespace package); and a module
    planted next to the run folder."""
    run = copy_run(tiny_run, tmp_path / "nsrun")
    (run / "evilmod_ns.py").write_text(EVIL)
    (tmp_path / "evilmod_beside.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    try:
        for prior in ("nsrun.evilmod_ns:Prior", "evilmod_beside:Prior"):
            name_prior(run, prior)
            one_line(capsys, ["evaluate", "nsrun"], f"names module {prior.split(':')[0]!r}")
            one_line(capsys, ["sample", str(run), "-n", "2"], "which is not imported")
    finally:
        for name in ("nsrun", "nsrun.evilmod_ns", "evilmod_beside"):
            sys.modules.pop(name, None)
    assert not (run / "MARKER").exists() and not (tmp_path / "MARKER").exists()


def test_the_standard_library_is_not_imported_either(tiny_run, tmp_path, capsys):
    """``this`` prints the Zen of Python on import: refused before importing it."""
    run = copy_run(tiny_run, tmp_path / "zen")
    name_prior(run, "this:Prior")
    assert "this" not in sys.modules
    one_line(capsys, ["evaluate", str(run)], "names module 'this'")
    assert "this" not in sys.modules and "Zen" not in capsys.readouterr().out


def test_an_allowed_module_is_imported(planted, capsys):
    """``--import MODULE`` / ``imports=[...]`` is the way to trust a run's module (here it then fails the check)."""
    run, name = planted
    with pytest.raises(ImportPathError, match="is not a class"):
        load_run(run, imports=[name])
    assert (run / "MARKER").exists()
    (run / "MARKER").unlink()
    sys.modules.pop(name)
    one_line(capsys, ["evaluate", ".", "--import", name], "is not a class")
    (run / "MARKER").unlink()
    one_line(capsys, ["evaluate", ".", "--import", "not a module"], "--import 'not a module': not a module name")


def test_python_m_does_not_search_the_current_folder(planted):
    """``python -m pyro_vae`` drops the current folder Python put first on sys.path: even an allowed module is
    found only where the ``pyro-vae`` script finds it (installed, or on PYTHONPATH)."""
    run, name = planted
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pyro_vae", "evaluate", ".", "--import", name], cwd=run, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"--import: cannot import module {name!r}" in done.stderr, done.stderr


# --- nothing written follows a link ---------------------------------------------------------------------

@pytest.fixture
def victim(tmp_path) -> Path:
    """A user's file that a planted link points to."""
    path = tmp_path / "precious.txt"
    path.write_text("the user's data")
    return path


@pytest.mark.parametrize("name", ["run.lock", "samples.png", "elbo.png", "reconstructions.png", "latent.png",
                                  "metrics.jsonl", "config.yaml"])
def test_resume_refuses_a_link_in_the_run_folder(tiny_run, tmp_path, victim, capsys, name):
    run = copy_run(tiny_run, tmp_path / "linked")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    one_line(capsys, ["train", "--resume", str(run), "train.epochs=2"], f"{name}: is a symbolic link")
    assert victim.read_text() == "the user's data" and (run / name).is_symlink()


def test_a_new_run_refuses_a_folder_holding_a_lock_link(tmp_path, victim, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.lock").symlink_to(victim)
    one_line(capsys, ["train", "train.epochs=1", "--out", str(out)], "run.lock: is a symbolic link")
    assert victim.read_text() == "the user's data" and sorted(p.name for p in out.iterdir()) == ["run.lock"]


def test_force_never_replaces_the_config_being_trained(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path / "forced")
    before = (run / "config.yaml").read_bytes()
    one_line(capsys, ["train", str(run / "config.yaml"), "--out", str(run), "--force"],
             "--force would replace", "the config file being trained")
    assert (run / "config.yaml").read_bytes() == before and (run / "model.pt").is_file()


def test_the_writers_refuse_links(tmp_path, victim):
    for write in (lambda p: write_bytes(p, b"x"), lambda p: append_text(p, "x"),
                  lambda p: os.close(open_nofollow(p, os.O_RDWR | os.O_CREAT))):
        link = tmp_path / "link"
        link.symlink_to(victim)
        with pytest.raises(OutputError, match="is a symbolic link"):
            write(link)
        link.unlink()
    assert victim.read_text() == "the user's data"
    write_bytes(tmp_path / "plain", b"ok")
    append_text(tmp_path / "plain", "!")
    assert (tmp_path / "plain").read_bytes() == b"ok!" and not list(tmp_path.glob(".*.tmp"))


def test_an_oversized_checkpoint_is_not_read(tiny_run, tmp_path, monkeypatch, capsys):
    run = copy_run(tiny_run, tmp_path / "huge")
    with open(run / "model.pt", "r+b") as f:
        f.truncate(64 << 20)  # sparse: no disk used
    monkeypatch.setenv("PYRO_VAE_MEMORY_LIMIT", str(32 << 20))
    with pytest.raises(RunDirError, match="over the 33.6 MB a checkpoint may have here"):
        load_run(run)
    one_line(capsys, ["evaluate", str(run)], "model.pt: 67.1 MB, over the", "not read")
