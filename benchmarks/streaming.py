"""Training on a memory-mapped .npy larger than the memory the training process may use.

    python benchmarks/streaming.py                    # 2 GiB file, 1.5 GiB cap: writes streaming.json/.md here
    python benchmarks/streaming.py --size-gb 0.5 --cap-gb 1.2 --small-gb 0.05   # quicker
    python benchmarks/streaming.py --against /path/to/older/checkout --repeats 4   # this tree ÷ that one

What it does, each training run in a fresh subprocess (one torch thread, pictures off):

1. writes a synthetic float32 array (N, D) to a .npy (x = z W + noise, z ~ N(0, I_8)) in chunks, plus a small
   one that fits in memory, and evicts the big file from the page cache (fsync + POSIX_FADV_DONTNEED);
2. on the small file: throughput (training datapoints per second) in memory and streamed through the
   DataLoader path (``data.in_memory: false``) with 0 and with ``--workers`` workers;
3. on the big file, under the cap (``setrlimit(RLIMIT_DATA)`` in the child): ``in_memory: true`` must fail
   with a one-line DataError, and ``in_memory: auto`` must see the cap, stream, and train one epoch.

Why ``RLIMIT_DATA``: it caps a process's private memory (heap, anonymous mappings), which is what loading an
array into memory needs, while a read-only memory-mapped file is page cache the kernel can evict at any time
and does not count. ``RLIMIT_AS`` would also count the file's mapping (so no mmap of a bigger file could
work at all) and a cgroup needs privileges a user usually lacks. Caveat, stated in the results: the page cache
itself is not capped, so after the first pass the machine's free RAM may serve re-reads of the file.
Torch alone reserves ~1 GiB of data segment at import (mostly untouched), so the cap includes that.
Every file written is deleted at the end.

``--against CHECKOUT`` compares two versions of the library instead: the small file's three cases (in memory,
streamed with 0 and with ``--workers`` workers), ``--epochs`` epochs each, run ``--repeats`` times by this
checkout and by CHECKOUT in turns (ABBA order), each run a fresh subprocess with that checkout's ``pyro_vae``
first on the path; per run the median epoch seconds past the first epoch, per case the median over runs and
the ratio this ÷ that (``streaming_against.json`` / ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GiB = 1 << 30


def write_array(path: Path, rows: int, dim: int, seed: int = 0, chunk: int = 65536) -> None:
    """x = z W + 0.1 ε with z ~ N(0, I_8), written chunk by chunk (never whole in memory)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(8, dim)).astype(np.float32) / np.sqrt(8)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        out[start:start + n] = rng.standard_normal((n, 8), dtype=np.float32) @ w + \
            0.1 * rng.standard_normal((n, dim), dtype=np.float32)
    out.flush()
    del out
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the first read comes from disk
    finally:
        os.close(fd)


def memory_sampler(peaks: dict, stop: threading.Event) -> None:
    """Peak RssAnon (private memory) and RssFile (mapped file pages) of this process, every 20 ms."""
    while not stop.is_set():
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile", "VmData"):
                peaks[key] = max(peaks.get(key, 0), int(line.split()[1]) * 1024)
        stop.wait(0.02)


def child(spec: dict) -> None:
    """One training run (in the capped subprocess); prints a JSON line."""
    import torch

    torch.set_num_threads(1)
    from pyro_vae import load_config, train
    from pyro_vae.data.streaming import available_memory
    from pyro_vae.errors import PyroVAEError
    from pyro_vae.run import Run

    Run.write_pictures = lambda self: None  # the measurement is the training loop
    peaks, stop = {}, threading.Event()
    threading.Thread(target=memory_sampler, args=(peaks, stop), daemon=True).start()
    config = load_config(None, spec["overrides"])
    start = time.perf_counter()
    result = {"available_memory_gib": available_memory() / GiB}
    try:
        run = train(config, spec["out"])
        wall = time.perf_counter() - start
        data = run.data()
        seconds = run.history[-1]["seconds"]  # the last epoch: past the first steps' warm-up
        result.update(ok=True, streamed=not data.in_memory, num_train=data.num_train,
                      epochs=len(run.history), epoch_seconds=seconds, wall_seconds=wall,
                      every_epoch_seconds=[h["seconds"] for h in run.history],
                      datapoints_per_second=data.num_train / seconds, test_elbo=run.history[-1]["test_elbo"])
    except (PyroVAEError, MemoryError) as e:
        result.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    stop.set()
    result.update({f"peak_{k}_gib": v / GiB for k, v in peaks.items()})
    print("RESULT " + json.dumps(result), flush=True)


def run_child(spec: dict, cap: int | None, root: Path = HERE.parent) -> dict:
    def limit() -> None:
        if cap is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    # the pyro_vae of ``root`` (this checkout by default) first: an installed copy elsewhere must not shadow it
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], preexec_fn=limit,
                          capture_output=True, text=True, env=env, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {"ok": False, "error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-gb", type=float, default=2.0, help="GiB of the big .npy (above the cap)")
    p.add_argument("--cap-gb", type=float, default=1.5, help="RLIMIT_DATA of the training process, GiB")
    p.add_argument("--small-gb", type=float, default=0.2, help="GiB of the file that fits (in memory vs streamed)")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--folder", default=None, help="where to write the arrays (default: a temporary folder)")
    p.add_argument("--json", default=str(HERE / "streaming.json"))
    p.add_argument("--against", type=Path, default=None,
                   help="another checkout of pyro-vae: time the small file's cases in both, in turns")
    p.add_argument("--repeats", type=int, default=4, help="--against: runs per case and checkout")
    p.add_argument("--epochs", type=int, default=6, help="--against: epochs per run")
    p.add_argument("--cases", nargs="+", default=None, choices=["memory", "streamed", "workers"],
                   help="--against: only these of the small file's cases (default: all three)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(json.loads(args.child))
        return
    if args.against is not None:
        against(args)
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="pyro_vae_stream_"))
    folder.mkdir(parents=True, exist_ok=True)
    row_bytes = 4 * args.dim
    big, small = folder / "big.npy", folder / "small.npy"
    cap = int(args.cap_gb * GiB)
    common = common_overrides(args.batch_size)
    results = {"settings": {k: v for k, v in vars(args).items()
                            if k not in ("child", "folder", "against", "repeats", "epochs", "cases")},
               "machine": {"cpus": os.cpu_count(), "torch_threads": 1}, "runs": {}}
    try:
        t = time.perf_counter()
        write_array(small, int(args.small_gb * GiB) // row_bytes, args.dim)
        write_array(big, int(args.size_gb * GiB) // row_bytes, args.dim, seed=1)
        results["write_seconds"] = time.perf_counter() - t
        results["files_gib"] = {"small": small.stat().st_size / GiB, "big": big.stat().st_size / GiB}
        cases = [  # (name, file, in_memory, workers, cap, epochs)
            *((name, small, in_memory, workers, None, 3) for name, in_memory, workers in small_cases(args.workers)),
            ("big, in memory, capped", big, "true", 0, cap, 1),
            (f"big, auto (streams), {args.workers} workers, capped", big, "auto", args.workers, cap, 1),
        ]
        for i, (name, path, in_memory, workers, limit, epochs) in enumerate(cases):
            spec = {"overrides": [*common, f"data.path={path}", f"data.in_memory={in_memory}",
                                  f"data.num_workers={workers}", f"train.epochs={epochs}"],
                    "out": str(folder / f"run{i}")}
            results["runs"][name] = run_child(spec, limit)
            print(name, json.dumps(results["runs"][name]), flush=True)
    finally:
        for f in folder.glob("*.npy"):
            f.unlink()
        subprocess.run(["rm", "-rf", str(folder)])
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(results, Path(args.json).with_suffix(".md"))


def common_overrides(batch_size: int) -> list:
    """What every run shares: the array data, the VAE D-128-8 with a Gaussian likelihood, the batch, seed 0."""
    return ["data.type=array", "data.test_fraction=0.01", "model.likelihood={type: gaussian, learn: shared}",
            "model.network.hidden_dims=[128]", "model.latent_dim=8", f"train.batch_size={batch_size}",
            "train.eval_samples=1", "train.progress=false", "seed=0"]


def small_cases(workers: int, only=None) -> list:
    """(name, in_memory, workers) of the small file's cases (``only``: their keys memory / streamed / workers)."""
    cases = {"memory": ("small, in memory", "true", 0), "streamed": ("small, streamed, 0 workers", "false", 0),
             "workers": (f"small, streamed, {workers} workers", "false", workers)}
    return [case for key, case in cases.items() if only is None or key in only]


def against(args: argparse.Namespace) -> None:
    """This checkout against ``args.against`` on the small file's cases, in ABBA turns (see the docstring)."""
    other = args.against.resolve()
    if not (other / "pyro_vae" / "__init__.py").is_file():
        sys.exit(f"streaming.py: --against {other}: no pyro_vae package there (expected a pyro-vae checkout)")
    folder = Path(args.folder or tempfile.mkdtemp(prefix="pyro_vae_stream_"))
    folder.mkdir(parents=True, exist_ok=True)
    small = folder / "small.npy"
    common = [*common_overrides(args.batch_size), f"data.path={small}", f"train.epochs={args.epochs}"]
    roots = {"this": HERE.parent, "that": other}

    def commit(root: Path) -> str:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return (out.stdout.strip() or "unknown") + (" with uncommitted changes" if dirty else "")

    results = {"settings": {"small_gb": args.small_gb, "dim": args.dim, "batch_size": args.batch_size,
                            "epochs": args.epochs, "repeats": args.repeats, "workers": args.workers, "this": commit(HERE.parent),
                            "that": commit(other)},
               "machine": {"cpus": os.cpu_count(), "torch_threads": 1}, "cases": {}}
    try:
        write_array(small, int(args.small_gb * GiB) // (4 * args.dim), args.dim)
        for case, (name, in_memory, workers) in enumerate(small_cases(args.workers, args.cases)):
            runs = {"this": [], "that": []}
            for r in range(args.repeats):
                for side in ("this", "that") if r % 2 == 0 else ("that", "this"):
                    spec = {"overrides": [*common, f"data.in_memory={in_memory}", f"data.num_workers={workers}"],
                            "out": str(folder / f"case{case}-{side}{r}")}
                    result = run_child(spec, None, roots[side])
                    if not result.get("ok"):
                        sys.exit(f"streaming.py: {name} with {roots[side]}: {result.get('error')}")
                    runs[side].append({"epoch_seconds": statistics.median(result["every_epoch_seconds"][1:] or
                                                                          result["every_epoch_seconds"]),
                                       "test_elbo": result["test_elbo"]})
                    print(f"{name} | {side} | run {r}: {runs[side][-1]}", flush=True)
            medians = {side: statistics.median(x["epoch_seconds"] for x in rs) for side, rs in runs.items()}
            pairs = [b["epoch_seconds"] / a["epoch_seconds"] for a, b in zip(runs["this"], runs["that"])]
            results["cases"][name] = {"runs": runs, "median_epoch_seconds": medians,
                                      "ratio": medians["that"] / medians["this"], "pair_ratios": pairs}
    finally:
        subprocess.run(["rm", "-rf", str(folder)])
    Path(HERE / "streaming_against.json").write_text(json.dumps(results, indent=1) + "\n")
    write_against_markdown(results, HERE / "streaming_against.md")


def write_against_markdown(results: dict, path: Path) -> None:
    s = results["settings"]
    lines = ["# This checkout against another (generated by `benchmarks/streaming.py --against`)", "",
             f"Small file {s['small_gb']} GiB of float32 vectors, D = {s['dim']}, batch {s['batch_size']}, "
             f"{s['epochs']} epochs per run, {s['repeats']} runs per case and checkout in ABBA turns, 1 torch "
             f"thread, {results['machine']['cpus']} CPU cores. Per run: the median epoch seconds past the first "
             "epoch; per case: the median over runs. Throughput ratio = that checkout's epoch seconds ÷ this "
             "checkout's (above 1: this one is faster).", "",
             f"* this: the checkout at {s['this']}", f"* that: the checkout at {s['that']}", "",
             "| case | this: epoch s (runs) | that: epoch s (runs) | throughput ratio this ÷ that | "
             "the same, per turn: mean ± sd | held-out ELBO this / that |",
             "|---|---|---|---|---|---|"]
    for name, c in results["cases"].items():
        runs = {side: ", ".join(f"{x['epoch_seconds']:.2f}" for x in c["runs"][side]) for side in ("this", "that")}
        elbo = {side: c["runs"][side][0]["test_elbo"] for side in ("this", "that")}
        pairs = c.get("pair_ratios", [])
        spread = (f"{statistics.fmean(pairs):.3f} ± {statistics.stdev(pairs):.3f} ({len(pairs)} turns)"
                  if len(pairs) > 1 else "")
        lines.append(f"| {name} | {c['median_epoch_seconds']['this']:.3f} ({runs['this']}) | "
                     f"{c['median_epoch_seconds']['that']:.3f} ({runs['that']}) | {c['ratio']:.3f} | {spread} | "
                     f"{elbo['this']:.4f} / {elbo['that']:.4f} |")
    path.write_text("\n".join(lines) + "\n")


def write_markdown(results: dict, path: Path) -> None:
    s = results["settings"]
    lines = ["# Streaming a memory-mapped .npy (generated by `benchmarks/streaming.py`)", "",
             f"Big file {results['files_gib']['big']:.2f} GiB, small file {results['files_gib']['small']:.3f} GiB, "
             f"float32 vectors of D = {s['dim']}; cap on the training process RLIMIT_DATA = {s['cap_gb']} GiB; "
             f"VAE D-128-8 (Gaussian likelihood), batch {s['batch_size']}, 1 torch thread, "
             f"test_fraction 0.01; machine: {results['machine']['cpus']} CPU cores shared with other jobs.", "",
             "| run | ok | streamed | training datapoints/s | epoch s | wall s | peak RssAnon GiB | peak RssFile GiB "
             "| note |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results["runs"].items():
        if r.get("ok"):
            lines.append(f"| {name} | yes | {r['streamed']} | {r['datapoints_per_second']:,.0f} | "
                         f"{r['epoch_seconds']:.1f} | {r['wall_seconds']:.1f} | {r.get('peak_RssAnon_gib', 0):.2f} | "
                         f"{r.get('peak_RssFile_gib', 0):.2f} | held-out ELBO {r['test_elbo']:.1f} |")
        else:
            lines.append(f"| {name} | no | | | | | {r.get('peak_RssAnon_gib', 0):.2f} | "
                         f"{r.get('peak_RssFile_gib', 0):.2f} | {r['error']} |")
    lines += ["", "The cap is `setrlimit(RLIMIT_DATA)` in the training subprocess: it limits private memory (what "
              "loading the array needs; torch itself reserves about 1 GiB of it at import), not the read-only "
              "mapping of the file, which is page cache. The capped in-memory run shows the cap is real; the "
              "capped `in_memory: auto` run sees the cap (`available_memory`) and streams. The page cache itself "
              "is not capped: the big file was evicted from it after writing, so the validation pass read it from "
              "disk, and the machine's free RAM may then have served the epoch's re-reads.", "",
              "The three runs on the small file report the same held-out ELBO: the same batches in the same order "
              "whichever path reads them.", "",
              "Throughput and epoch seconds are those of the last epoch (small file: 3 epochs, big file: 1); "
              "they include the held-out ELBO on 1% of the rows. Wall seconds cover the whole run: loading, "
              "the validation pass over every row (finite values, likelihood support) and every epoch. "
              "RssAnon is the process's private memory, RssFile the file pages mapped into it (page cache "
              "the kernel may evict). Throughput of DataLoader workers is measured in the main process; worker "
              "processes have their own memory, not shown."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
