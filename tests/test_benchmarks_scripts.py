"""Every script in benchmarks/ imports against the library as it is now (a renamed or removed name fails here,
not at the start of an hours-long run), and the M2 script's validation slice is the library's ``data.validation``
split of the same size."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pyro_vae.config.run import load_config
from pyro_vae.data import load_data

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))
HELPERS = {"sweep_report", "mnist_loop"}  # modules the scripts import, with no command of their own


def load_script(path: Path):
    sys.path.insert(0, str(REPO / "benchmarks"))  # scripts import their neighbours (sweep_report, m2_validation)
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_there_are_scripts_to_check():
    assert {"likelihood", "clustering", "m2_balance", "streaming"} <= {p.stem for p in SCRIPTS}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_script_imports_and_has_an_entry_point(path: Path):
    module = load_script(path)
    if path.stem not in HELPERS:
        assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


def test_m2_validation_slice_is_the_first_points_of_the_training_split():
    m2 = load_script(REPO / "benchmarks" / "m2_balance.py")
    config = load_config(REPO / "configs" / "digits_m2.yaml", ["seed=0"])
    whole = load_data(replace(config.data, labeled=None, binarize="none"), 0)
    fraction = m2.validation_fraction(config, 0, 180)
    cut = load_config(REPO / "configs" / "digits_m2.yaml", ["seed=0", f"data.validation={fraction!r}"])
    data, grey = m2.splits(cut, 0)
    assert data.test_x.shape[0] == 180 and data.train_x.shape[0] == whole.train_x.shape[0] - 180
    assert (grey.test_x == whole.train_x[:180]).all() and (data.train_y == whole.train_y[180:]).all()
    assert data.labeled.numel() == 100 and int(data.labeled.max()) < data.train_x.shape[0]


def test_streaming_against_cases_and_table(tmp_path):
    streaming = load_script(REPO / "benchmarks" / "streaming.py")
    assert [c[0] for c in streaming.small_cases(2, ["workers", "memory"])] == \
        ["small, in memory", "small, streamed, 2 workers"]
    assert len(streaming.small_cases(3)) == 3 and streaming.small_cases(3)[2] == ("small, streamed, 3 workers", "false", 3)
    runs = {"this": [{"epoch_seconds": 2.0, "test_elbo": -1.5}, {"epoch_seconds": 1.0, "test_elbo": -1.5}],
            "that": [{"epoch_seconds": 3.0, "test_elbo": -1.5}, {"epoch_seconds": 1.0, "test_elbo": -1.5}]}
    results = {"settings": {"small_gb": 0.1, "dim": 4, "batch_size": 8, "epochs": 3, "repeats": 2,
                            "this": "abc", "that": "def"}, "machine": {"cpus": 2},
               "cases": {"small, in memory": {"runs": runs, "median_epoch_seconds": {"this": 1.5, "that": 2.0},
                                              "ratio": 2.0 / 1.5, "pair_ratios": [1.5, 1.0]}}}
    streaming.write_against_markdown(results, tmp_path / "a.md")
    row = (tmp_path / "a.md").read_text().splitlines()[-1]
    assert row.startswith("| small, in memory | 1.500 (2.00, 1.00) | 2.000 (3.00, 1.00) | 1.333 | 1.250 ± 0.354 (2 turns) |")


def test_cvae_converged_report_reads_the_finished_seeds(tmp_path):
    cvae = load_script(REPO / "benchmarks" / "cvae_mnist.py")
    for seed, (base, elbo, nll) in enumerate([(100.0, 70.0, 68.0), (102.0, 74.0, 70.0)]):
        folder = tmp_path / "1q" / "seeds" / f"seed={seed}"
        folder.mkdir(parents=True)
        (folder / "quadrants.json").write_text(json.dumps(
            {"visible": 1, "baseline_budget": 31, "cvae_budget": 82, "seed": seed, "baseline_nll": base,
             "cvae_neg_elbo": elbo, "cvae_nll": nll, "num_samples": 100}))
    text = cvae.converged_report(tmp_path)
    assert text.splitlines()[-1] == "| 1 | 31 + 82 | 0, 1 | 101.00 ± 1.41 | 72.00 ± 2.83 | 69.00 ± 1.41 (100) | 29.00 ± 1.41 |"
    assert len(json.loads((tmp_path / "cvae_converged.json").read_text())) == 2


def test_cvae_budgets_follow_each_phases_monitor_and_wait_for_the_run(tmp_path):
    """The baseline's budget is its best validation ELBO epoch, the CVAE's its best IWAE epoch; none until done."""
    from pyro_vae.experiments.summary import write_csv

    cvae = load_script(REPO / "benchmarks" / "cvae_mnist.py")
    folder = tmp_path / "budget"
    (folder / "seed=0").mkdir(parents=True)
    rows = [(-90.0, -88.0), (-85.0, -84.0), (-86.0, -83.0)] + [(-87.0, -85.0)] * cvae.PATIENCE
    (folder / "seed=0" / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e + 1, "test_elbo": elbo, "test_iwae": iwae}) + "\n" for e, (elbo, iwae) in enumerate(rows)))
    write_csv([{"run": "seed=0", "seed": 0, "status": "interrupted"}], folder / "summary.csv")
    assert cvae.validation_budget(folder, "elbo") is None
    write_csv([{"run": "seed=0", "seed": 0, "status": "done"}], folder / "summary.csv")
    assert (cvae.validation_budget(folder, "elbo"), cvae.validation_budget(folder, "iwae")) == (2, 3)


def test_clustering_report_of_a_part_prints_and_leaves_the_full_table_alone(tmp_path, monkeypatch, capsys):
    bench = load_script(REPO / "benchmarks" / "clustering.py")
    (tmp_path / "clustering_table.md").write_text("the full table\n")
    monkeypatch.setattr(sys, "argv", ["clustering.py", "--report", "--datasets", "digits", "--rows", "kmeans_raw",
                                      "--seeds", "0", "--out", str(tmp_path)])
    bench.main()
    printed = capsys.readouterr().out
    assert "| k-means, raw pixels | 1 |" in printed and "a part of the benchmark" in printed
    assert (tmp_path / "clustering_table.md").read_text() == "the full table\n"
    assert not (tmp_path / "clustering.png").exists()


def test_replace_between_keeps_the_end_marker_on_its_own_line():
    report = load_script(REPO / "benchmarks" / "sweep_report.py")
    doc = "intro\n<!-- t:start -->\nold\n<!-- t:end -->\nrest\n"
    for text in ("| a |\n", "| a |"):
        assert report.replace_between(doc, "<!-- t:start -->", "<!-- t:end -->", text) == \
            "intro\n<!-- t:start -->\n| a |\n<!-- t:end -->\nrest\n"
    assert report.replace_between("no markers\n", "<!-- t:start -->", "<!-- t:end -->", "| a |") == "no markers\n"


def test_clustering_report_reads_derived_metrics_without_checkpoints(tmp_path):
    bench = load_script(REPO / "benchmarks" / "clustering.py")
    sweep = bench.folder(tmp_path, "digits", "vade")
    sweep.mkdir(parents=True)
    (sweep / "summary.csv").write_text("run,seed,status,train_elbo,seconds,test_log_likelihood,cluster_accuracy\n"
                                       "seed=0,0,done,-23.0,5.0,-22.5,0.8\n")
    with pytest.raises(FileNotFoundError, match=r"seed=0.*model\.pt.*fitted_set"):
        bench.records(tmp_path, "digits", "vade", [0], False, "")
    cached = {"seed=0": {"fitted_set": {"key": "fitted_set -23.0", "metrics": {"fitted_cluster_accuracy": 0.75}}}}
    (sweep / bench.DERIVED).write_text(json.dumps(cached))
    [record] = bench.records(tmp_path, "digits", "vade", [0], False, "")
    assert (record["cluster_accuracy"], record["fitted_cluster_accuracy"], record["log_px"]) == (0.8, 0.75, -22.5)
    (sweep / "summary.csv").write_text((sweep / "summary.csv").read_text().replace("-23.0", "-22.9"))  # run redone
    with pytest.raises(FileNotFoundError, match="rerun the sweep"):
        bench.records(tmp_path, "digits", "vade", [0], False, "")
