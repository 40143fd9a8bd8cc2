"""The ``pyro-vae`` command line: train, sample, evaluate, impute, compare, sweep, tune, list."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

from . import __version__, registry
from .errors import OutputError, PyroVAEError, TrainingError, shown
from .resources import check_memory, memory_limit, sample_bytes
from .train.signals import interrupted_message, interrupted_signal, interrupts_raise

COMMON_FORMATS = ("png", "jpg", "jpeg", "pdf", "svg", "tif", "tiff", "webp")  # listed first in errors
PROGRESS_SAMPLES = 1_000_000  # `evaluate`: N·K importance samples from which a progress bar is shown


def check_output_file(path: str, option: str, formats: Iterable[str]) -> Path:
    """``path`` if a file can be written there in one of ``formats`` (extensions); else an OutputError."""
    if not str(path).strip():
        raise OutputError(f"{option}: empty path; give a file name, e.g. out.png")
    if "\x00" in str(path):
        raise OutputError(f"{option} {str(path)!r}: a path cannot contain a NUL byte")
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{option} {shown(out)}: is a folder; give a file name, e.g. {shown(out / 'out.png')}")
    parent = out.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"{option} {shown(out)}: folder {shown(parent)} {what} (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {shown(out)}: folder {shown(parent)} is not writable")
    allowed = sorted({f.lower().lstrip(".") for f in formats}, key=lambda f: (f not in COMMON_FORMATS, f))
    if out.suffix.lower().lstrip(".") not in allowed:
        listed = ", ".join("." + f for f in allowed[:8]) + (f" and {len(allowed) - 8} more" if len(allowed) > 8 else "")
        raise OutputError(f"{option} {shown(out)}: unknown image format "
                          f"{out.suffix if out.suffix else '(no extension)'!r}; use one of: {listed}")
    return out


def _image_formats() -> List[str]:
    """What torchvision's ``save_image`` (PIL) writes: png, jpg, ..."""
    from PIL import Image

    return [ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE]


def _figure_formats() -> List[str]:
    """What matplotlib's ``savefig`` writes: png, pdf, svg, ..."""
    from matplotlib.backend_bases import FigureCanvasBase

    return list(FigureCanvasBase.get_supported_filetypes())




def _train(args: argparse.Namespace) -> int:
    from .run import resume, train
    from .train import distributed
    from .train.signals import Interrupted

    config, overrides = args.config, list(args.overrides)
    if args.resume is not None and (config is not None or args.out is not None):
        raise PyroVAEError("--resume RUN_DIR continues that folder with its own config: give no CONFIG or --out "
                           "(overrides allowed: train.epochs=N, train.progress=false)")
    if args.resume is not None and args.force:
        raise PyroVAEError("--resume continues a run and --force replaces one: give one of them")
    try:
        run = (resume(args.resume, overrides, imports=args.imports) if args.resume is not None
               else train(config, args.out, overrides, force=args.force))
    except Interrupted as e:  # SIGINT/SIGTERM: the checkpoint is saved; exit 128 + signal number
        print(f"pyro-vae: {e}", file=sys.stderr)
        return e.exit_code
    if not distributed.launched_as_main():  # under torchrun rank 0 alone reports
        return 0
    last = run.history[-1]
    bits = last.get("test_bits_per_dim")  # (a likelihood over discrete levels; rows of older runs lack the key)
    print(f"run folder: {run.path}\n"
          f"epoch {last['epoch']}: train ELBO {last['train_elbo']:.3f}, test ELBO {last['test_elbo']:.3f} nats/datapoint"
          + ("" if bits is None else f" ({bits:.4f} bits/dim)"))
    return 0


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    from . import plots
    from .run import load_run

    if args.num < 1:
        raise PyroVAEError(f"-n: expected a number of samples >= 1, got {args.num}")
    if args.output is not None:
        check_output_file(args.output, "-o", [*_image_formats(), "npy", "csv"])
    run = load_run(args.run_dir, imports=args.imports)
    per_sample = sample_bytes(1, run.model.data_shape)
    check_memory(args.num * per_sample, f"-n {args.num}", f"give -n <= {memory_limit() // per_sample}",
                 "the samples and their grid")
    condition = _numbers(args.condition, "--condition") if args.condition is not None else None
    out = Path(args.output) if args.output else fresh_samples_path(run.path, args.num)
    try:
        samples = run.sample(args.num, args.label, condition)
    except NotImplementedError:
        raise PyroVAEError(f"model.type: {run.config.model.type} does not generate samples (no generate method)") \
            from None
    values = samples.cpu().numpy()
    if out.suffix == ".npy":  # the values themselves
        np.save(out, values)
    elif out.suffix == ".csv":  # one sample a row (images flattened); a table's column names as the header
        plots.save_values_csv(samples, out, run.feature_names())
    else:  # an image grid; for vectors per-feature histograms with a CSV of the values beside them
        plots.save_samples(samples, out, run.feature_names(), run.drawn())
    what = f" of class {args.label}" if args.label is not None else f" at c = {args.condition}" if condition else \
        " at the test split's covariates" if run.model.covariate_dim else ""
    print(f"wrote {args.num} samples{what} to {out}")
    return 0


def fresh_samples_path(run_dir: Path, num: int) -> Path:
    """``RUN_DIR/samples-<n>-<time>.png``, a name not taken yet: the run's own ``samples.png`` is left alone."""
    stem = f"samples-{num}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = run_dir / f"{stem}.png", 1
    while path.exists():
        i += 1
        path = run_dir / f"{stem}-{i}.png"
    return path


def _numbers(text: str, key: str) -> List[float]:
    """``"1.5,-2,0"`` -> [1.5, -2.0, 0.0]; anything else is a one-line error naming ``key``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise PyroVAEError(f"{key}: expected comma-separated numbers c1,c2,..., got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise PyroVAEError(f"{key}: expected finite numbers, got {text!r}")
    return values


def _evaluate(args: argparse.Namespace) -> int:
    from .run import load_run

    if args.num_samples < 1:
        raise PyroVAEError(f"--num-samples: expected an integer >= 1, got {args.num_samples}")
    run = load_run(args.run_dir, imports=args.imports)
    total = args.num_samples * int(run.data().test_x.shape[0])
    long = total >= PROGRESS_SAMPLES
    if long:  # memory is bounded (K is drawn in chunks); the time is not: say so, and show progress
        print(f"pyro-vae: log p(x) with K={args.num_samples} importance samples for each of "
              f"{total // args.num_samples} test points: {total:.3g} decoder passes (chunked: memory stays "
              "bounded); the bar shows the time estimate, Ctrl-C stops", file=sys.stderr)
    result = run.evaluate(args.num_samples, progress=long)


    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _impute(args: argparse.Namespace) -> int:
    import csv

    from .data.table import read_table
    from .evaluation.imputation import impute_rows
    from .run import load_run

    if args.num_samples < 1:
        raise PyroVAEError(f"--num-samples: expected an integer >= 1, got {args.num_samples}")
    if args.draws is not None and args.draws < 1:
        raise PyroVAEError(f"--draws: expected an integer >= 1, got {args.draws}")
    source = Path(args.input)
    if not source.is_file():
        raise PyroVAEError(f"INPUT {shown(source)}: not a file (expected a CSV, TSV or Parquet table)")
    outs: List[Optional[Path]] = [None]
    if args.output is not None:
        if Path(args.output).suffix.lower() not in (".csv", ".tsv"):
            raise OutputError(f"-o {shown(args.output)}: expected a .csv or .tsv file")
        out = check_output_file(args.output, "-o", ["csv", "tsv"])
        if out.resolve() == source.resolve():
            raise OutputError(f"-o {shown(out)}: is INPUT itself; give another file (the input is kept)")
        outs = [out] if not args.draws else [out.with_name(f"{out.stem}_{m + 1}{out.suffix}") for m in range(args.draws)]
    elif args.draws:
        raise PyroVAEError("--draws: needs -o OUTPUT (the draws go to OUTPUT_1.csv, OUTPUT_2.csv, ...)")
    run = load_run(args.run_dir, imports=args.imports)
    header, rows = read_table(source, None)
    tables = impute_rows(run, header, rows, str(source), args.num_samples, args.draws)
    for out, table in zip(outs, tables):  # everything computed first: bad input writes nothing
        f = open(out, "w", newline="") if out is not None else sys.stdout
        try:
            writer = csv.writer(f, delimiter="\t" if out is not None and out.suffix.lower() == ".tsv" else ",",
                                lineterminator="\n")
            writer.writerow(header)
            writer.writerows(["" if v is None else v for v in row] for row in table)
        finally:
            if out is not None:
                f.close()
    if outs[0] is not None:
        print(f"wrote {', '.join(map(str, outs))}", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    if args.num_samples < 0:
        raise PyroVAEError(f"--num-samples: expected an integer >= 0, got {args.num_samples}")
    figure = check_output_file(args.output, "-o", _figure_formats())
    print(compare_runs(args.run_dirs, figure, num_samples=args.num_samples, imports=args.imports), end="")
    print(f"wrote {figure}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import sweep
    from .train.signals import Interrupted

    try:
        table = sweep(args.config, args.overrides, args.out, args.workers, args.evaluate, imports=args.imports)
    except Interrupted as e:  # SIGINT/SIGTERM: the running runs saved their checkpoints; exit 128 + signal number
        print(f"pyro-vae: {e}", file=sys.stderr)
        return e.exit_code
    failed = [row for row in table if row["status"] != "done"]
    print(f"sweep folder: {args.out} ({len(table) - len(failed)} of {len(table)} runs finished; "
          f"summary.csv, summary.md, summary.png)")
    return 1 if failed else 0


def _tune(args: argparse.Namespace) -> int:
    from .experiments.tune import tune

    best = tune(args.config, args.space, args.out, args.trials, args.storage, args.workers, args.validation,
                args.study, args.overrides)
    print(f"best trial {best['number']}: validation ELBO {best['value']:.3f}; config: {best['config']} "
          f"(train it with: pyro-vae train {best['config']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .config.schema import describe

    for module in args.imports:  # the user's own components: registered on import, or found by kind and Config
        registry.import_components(module)
    for table in registry.REGISTRIES:
        print(f"{table.kind}s:")
        for entry in table.entries():
            print(f"  {entry.name}: {entry.doc}")
            for name, type_name, default, doc in describe(entry.config_cls):
                print(f"      {name} ({type_name}, default {default!r}){': ' + doc if doc else ''}")
    return 0


def add_import_option(parser: argparse.ArgumentParser,
                      help: str = "allow a run's import paths (type: MODULE:Class) to import MODULE (repeatable), "
                                  "e.g. my_project.priors; a run imports no module on its own") -> None:
    """``--import MODULE`` (repeatable, into ``args.imports``): the user's own modules, imported explicitly."""
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE", help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyro-vae", description="Variational autoencoders as Pyro programs.")
    parser.add_argument("--version", action="version", version=f"pyro-vae {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config into a run folder")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: the packaged digits VAE)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.epochs=5 (before or after the "
                                                "options)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<data>-<model>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from RUN_DIR/model.pt (same metrics as if never stopped)")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds a run (its run files are replaced) or other files")
    add_import_option(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("sample", help="decode prior draws of a trained run into an image grid (or .npy/.csv values)")
    p.add_argument("run_dir")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples")
    p.add_argument("-o", "--output", default=None,
                   help="PNG image grid, or .npy/.csv for the values (default: a new RUN_DIR/samples-N-TIME.png; "
                        "the run's samples.png is kept)")
    p.add_argument("--label", type=int, default=None, help="class to draw (label-conditional models, e.g. cvae)")
    p.add_argument("--condition", default=None, metavar="C1,C2,...",
                   help="covariates to draw at (covariate-conditional models; default: the test split's)")
    add_import_option(p)
    p.set_defaults(func=_sample)

    p = sub.add_parser("evaluate", help="held-out bounds of a trained run, as JSON")
    p.add_argument("run_dir")
    p.add_argument("--num-samples", type=int, default=100, help="importance samples K per test point")
    p.add_argument("--json", action="store_true", help="one-line JSON")
    add_import_option(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("impute", help="fill the missing cells of a table from a run trained on its columns")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("input", metavar="INPUT", help="CSV, TSV or Parquet table with the run's columns")
    p.add_argument("-o", "--output", default=None, help=".csv or .tsv to write (default: standard output)")
    p.add_argument("--num-samples", type=int, default=1000, help="importance samples K per row")
    p.add_argument("--draws", type=int, default=None, metavar="M",
                   help="M multiple imputations by sampling-importance-resampling (OUTPUT_1 ... OUTPUT_M)")
    add_import_option(p)
    p.set_defaults(func=_impute)

    p = sub.add_parser("compare", help="two or more runs (or a sweep folder's runs) in one table and one ELBO-curve "
                                       "figure")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, or a sweep folder (its runs)")
    p.add_argument("-o", "--output", default="compare.png", help="figure PNG (default: compare.png)")
    p.add_argument("--num-samples", type=int, default=0,
                   help="K > 0: also evaluate each run (importance-sampled log p(x), clustering accuracy)")
    add_import_option(p)
    p.set_defaults(func=_compare)

    p = sub.add_parser("sweep", help="train the cross product of key=a,b,c overrides into one folder, in parallel")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: the packaged digits VAE)")
    p.add_argument("overrides", nargs="*", help="key=a,b,c swept (commas inside [..] or {..} do not split), "
                                                "key=value applied to every run")
    p.add_argument("--out", required=True, help="sweep folder: one run folder per cell, summary.csv/.md/.png")
    p.add_argument("--workers", type=int, default=None, help="runs at once (default: the CPUs available)")
    p.add_argument("--evaluate", type=int, default=0, metavar="K",
                   help="K > 0: evaluate each finished run with K importance samples (log p(x), accuracies)")
    add_import_option(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("tune", help="search a config's hyperparameters with Optuna on a validation slice")
    p.add_argument("config", nargs="?", default=None, help="YAML config (default: the packaged digits VAE)")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every trial")
    p.add_argument("--space", required=True, help="search space YAML (see docs/experiments.md)")
    p.add_argument("--trials", type=int, default=20, help="trials in all (shared by the workers; default 20)")
    p.add_argument("--out", default="tune", help="folder: trial run folders, study.db, best.yaml (default: tune)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite in --out); any "
                                                   "SQLAlchemy URL lets several machines share one study")
    p.add_argument("--study", default="pyro-vae", help="study name in the storage (default: pyro-vae)")
    p.add_argument("--workers", type=int, default=1, help="trial processes on this machine (default 1)")
    p.add_argument("--validation", type=float, default=0.1,
                   help="fraction of the training split held out to score trials (default 0.1)")
    add_import_option(p)
    p.set_defaults(func=_tune)

    p = sub.add_parser("list", help="every model, dataset, network, prior, likelihood and objective")
    add_import_option(p, "also list the components of your own module (repeatable), e.g. my_project.priors")
    p.set_defaults(func=_list)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> argparse.Namespace:
    """``parser.parse_args``, with ``train``'s key=value overrides also accepted after its options
    (``pyro-vae train CONFIG --out DIR a.b=1 c=2``)."""
    args, extra = parser.parse_known_args(argv)
    if args.command in ("train", "sweep", "tune") and all("=" in a and not a.startswith("-") for a in extra):
        if args.config is not None and "=" in args.config:  # `pyro-vae train train.epochs=5`: no config file
            args.config, args.overrides = None, [args.config, *args.overrides]
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _one_line(message: object) -> str:
    """Messages are one line; a newline that slipped in (e.g. inside a user's path) is shown escaped."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; bad input is one ``pyro-vae: error:`` line and exit 2, a training failure exit 1."""
    args = parse_args(build_parser(), argv)
    try:
        with interrupts_raise(args.command):
            registry.import_modules(args.imports)  # the user's own modules, before anything else
            code = args.func(args)
            sys.stdout.flush()  # a reader that closed the pipe shows here, not in the flush at exit
            return code
    except TrainingError as e:  # the run could not go on: its cause, and what was kept
        print(f"pyro-vae: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except PyroVAEError as e:
        print(f"pyro-vae: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `pyro-vae list | head -1`: the reader has what it wanted; no message, no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 0
    except OSError as e:  # disk full, permissions, ... anywhere: one line naming the file
        where = f"{shown(e.filename)}: " if e.filename else ""
        print(f"pyro-vae: error: {where}{_one_line(e.strerror or e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"pyro-vae: error: {args.command}: out of memory (try a smaller -n, --num-samples or batch size)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_message(args.command), file=sys.stderr)
        return 128 + interrupted_signal()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
