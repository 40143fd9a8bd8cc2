"""``pyro-vae sweep``: parallel runs into one folder, summary files, resuming, retrying, bad input."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from pyro_vae.cli import main
from pyro_vae.errors import OutputError
from pyro_vae.experiments.grid import build
from pyro_vae.experiments.runner import _worker_env, available_cpus, plan
from pyro_vae.experiments.sweep import sweep

TINY = ["train.epochs=1", "model.network.hidden_dims=[8]", "model.latent_dim=2", "train.num_images=4",
        "train.eval_samples=2", "data.test_fraction=0.2"]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Two cells × two seeds on two workers; the cell data.limit=1 cannot train (no training points)."""
    out = tmp_path_factory.mktemp("sweep") / "grid"
    table = sweep(None, [*TINY, "data.limit=1,100", "seed=0,1"], out, workers=2, evaluate=2, progress=False)
    return out, table


def test_one_folder_per_cell_and_a_row_per_run(swept):
    out, table = swept
    rows = read(out / "summary.csv")
    assert [r["run"] for r in rows] == ["data.limit=1,seed=0", "data.limit=1,seed=1", "data.limit=100,seed=0",
                                        "data.limit=100,seed=1"]
    done = [r for r in rows if r["status"] == "done"]
    assert [r["seed"] for r in done] == ["0", "1"] and all(r["epochs"] == "1" for r in done)
    assert all(float(r["test_elbo"]) < 0 and float(r["test_log_likelihood"]) < 0 for r in done)  # --evaluate 2
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2 and all("leave none for training" in r["error"] for r in failed)
    assert all((out / r["run"] / "model.pt").is_file() for r in done)
    md = (out / "summary.md").read_text()
    assert "| data.limit | runs |" in md and "| 100 | 2/2 |" in md and " ± " in md and "| 1 | 0/2 |" in md
    assert (out / "summary.png").stat().st_size > 0


def test_rerun_trains_nothing_finished_and_widening_adds_only_new_cells(swept):
    out, _ = swept
    folder = out / "data.limit=100,seed=0"
    stamp = (folder / "model.pt").stat().st_mtime_ns
    grid = [*TINY, "data.limit=1,100", "seed=0,1,2", "train.epochs=2"]
    table = sweep(None, grid, out, workers=2, progress=False)
    assert [r["status"] for r in table] == ["failed"] * 3 + ["done"] * 3  # the failed ones were retried
    assert [r["epochs"] for r in table[3:]] == [2, 2, 2]  # seeds 0, 1 resumed to epoch 2; seed 2 new
    assert (folder / "model.pt").stat().st_mtime_ns != stamp
    jobs = plan(out, build(None, grid))  # the same command again: finished runs skipped, failed ones retried
    assert [job.mode for job in jobs] == ["retry"] * 3 + ["skip"] * 3
    assert [job.mode for job in plan(out, build(None, grid), evaluate=2)][3:] == ["evaluate"] * 3


@pytest.mark.parametrize("args, words", [
    (["model.latnt_dim=2,3"], "model.latnt_dim: unknown key"),
    (["model.latent_dim=2,"], "model.latent_dim: empty value"),
    (["train.lr=1e-3,-1"], "train.lr: got -1.0"),
    (["--workers", "0"], "--workers: expected an integer >= 1"),
])
def test_bad_grids_are_one_line_before_any_run(tmp_path, capsys, args, words):
    assert main(["sweep", *args, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_a_folder_of_another_config_is_never_overwritten(swept, capsys):
    out, _ = swept
    assert main(["sweep", *TINY, "data.limit=1,100", "seed=0,1", "model.latent_dim=3", "--out", str(out)]) == 2
    assert "holds a run of another config (model.latent_dim: 2 there, 3 in this sweep)" in capsys.readouterr().err


def test_workers_share_the_cores_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = int(_worker_env(available_cpus())["OMP_NUM_THREADS"])
    assert threads == 1 and _worker_env(1)["MKL_NUM_THREADS"] == str(available_cpus())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's explicit choice wins, as in a single run
    assert _worker_env(1)["OMP_NUM_THREADS"] == _worker_env(8)["MKL_NUM_THREADS"] == "3"


def test_a_finished_run_without_its_weights_is_skipped(tmp_path):
    """A finished run whose model.pt is not kept (e.g. a committed sweep: weights are ignored by git) is not
    retrained; asking it for more epochs or another evaluation is one line."""
    cells = build(None, ["seed=0", "train.epochs=2"], ("seed",))
    folder = tmp_path / cells[0].name
    folder.mkdir()
    (folder / "result.json").write_text('{"status": "done", "epochs": 2}')
    assert [job.mode for job in plan(tmp_path, cells)] == ["skip"]
    with pytest.raises(OutputError, match="without its weights"):
        plan(tmp_path, cells, evaluate=10)


def test_workers_start_with_this_library_first_on_the_path(monkeypatch):
    """The forkserver takes the environment, not sys.path: while a worker starts, the folder holding the
    pyro_vae this process runs is first on PYTHONPATH; the variable is restored (or removed) afterwards."""
    import pyro_vae
    from pyro_vae.experiments.runner import LIBRARY_ROOT, library_first

    assert (LIBRARY_ROOT / "pyro_vae" / "__init__.py").resolve() == Path(pyro_vae.__file__).resolve()
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with library_first():
        assert os.environ["PYTHONPATH"] == str(LIBRARY_ROOT)
    assert "PYTHONPATH" not in os.environ
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    with library_first():
        assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(LIBRARY_ROOT), "/elsewhere"]
    assert os.environ["PYTHONPATH"] == "/elsewhere"


class _LostStatus:
    """A worker process that writes ``result`` (or nothing) and ends with ``code``, as the forkserver reports it."""

    def __init__(self, result, code):
        self.result, self.exitcode, self.pid = result, code, 4242

    def __call__(self, target, args, name):
        self.folder = Path(args[0]["out"])
        return self

    def start(self):
        if self.result is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "result.json").write_text(json.dumps(self.result))

    def join(self):
        pass

    def is_alive(self):
        return False


@pytest.mark.parametrize("writes, code, status", [
    ({"status": "failed", "error": "no data"}, 255, "failed"),   # status lost, the run's result stands
    ({"status": "done", "epochs": 1}, 255, "done"),
    (None, 255, "failed"),                                       # nothing written: the exit code is the error
    (None, 137, "failed"),
])
def test_a_lost_exit_status_keeps_the_result_the_run_wrote(tmp_path, writes, code, status):
    from types import SimpleNamespace

    from pyro_vae.experiments.runner import _launch, _Stop

    (job,) = plan(tmp_path / "grid", build(None, [*TINY, "seed=0"]))
    (tmp_path / "grid" / "logs").mkdir(parents=True)
    ctx = SimpleNamespace(Process=_LostStatus(writes, code))
    result = _launch(job, None, tmp_path / "grid", 0, 1, _Stop(), ctx).result
    assert result["status"] == status
    if writes is None:
        assert f"exited with code {code}" in result["error"]
    else:
        assert result == writes


def test_a_result_left_by_an_earlier_run_is_not_taken_for_a_lost_status(tmp_path):
    from types import SimpleNamespace

    from pyro_vae.experiments.runner import _launch, _Stop

    (job,) = plan(tmp_path / "grid", build(None, [*TINY, "seed=0"]))
    job.folder.mkdir(parents=True)
    (job.folder / "result.json").write_text(json.dumps({"status": "failed", "error": "the earlier failure"}))
    (tmp_path / "grid" / "logs").mkdir(parents=True)
    result = _launch(job, None, tmp_path / "grid", 0, 1, _Stop(), SimpleNamespace(Process=_LostStatus(None, 255))).result
    assert "exited with code 255" in result["error"]
