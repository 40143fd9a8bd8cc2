"""Run folders: train a config into one, load one back, sample and evaluate from one.

A run folder holds ``config.yaml`` (fully resolved), ``model.pt`` (the last epoch, or the step an
interrupt stopped at: weights + metadata + training state; the model ``load_run`` loads and the point
``resume`` continues from), ``best.pt`` (the epoch with the highest held-out ELBO), both loading with
``weights_only=True``, ``metrics.jsonl`` (one JSON object per epoch) and the pictures
``samples.png``, ``reconstructions.png``, ``latent.png`` and ``elbo.png``.

This module is the hub: it builds the data, model and trainer and hands the training loop the run folder's
recorders (:mod:`pyro_vae.train.recorders`, callbacks of :mod:`pyro_vae.train.callbacks`). The pictures
(:mod:`pyro_vae.pictures`), prior draws (:mod:`pyro_vae.sampling`), memory estimates (:mod:`pyro_vae.resources`)
and what a resume may change (:mod:`pyro_vae.train.resumption`) each live in their own module.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Union

import pyro
import torch

from .config.run import RunConfig, load_config, save_config
from .config.schema import from_dict, to_dict
from .data import Dataset, Standardizer, load_data
from .data.python import python_config
from .errors import ConfigError, DataError, ImportPathError, PyroVAEError, RunDirError, TrainingError
from .evaluation.classification import classification_metrics
from .evaluation.clustering import clustering_metrics
from .evaluation.imputation import column_loglik
from .evaluation.loglik import SAMPLES_PER_PASS
from .evaluation.report import evaluate as evaluation_report
from .likelihoods.columns import fill_columns
from .models import build_model
from .models.base import GenerativeModel
from .pictures import write_pictures as write_run_pictures
from .pictures import write_vector_pictures
from .registry import only_imported
from .resources import check_parameters, parameter_bound
from .sampling import draw
from .tracking import check_trackers, open_tracker
from .threads import first_datapoint, pass_threads, using_threads
from .validation import validate
from .train import EpochMetrics, Trainer, load_checkpoint, resolve_device
from .train import distributed
from .train.budget import check_run_size
from .train.checkpoint import clean_stray_temp_files, write_atomic
from .train.recorders import BEST, CHECKPOINT, CONFIG, METRICS, recorders, write_file
from .train.resumption import check_continues, resumed_config, training_state
from .train.runfolder import check_not_replaced, check_out, make_folder, refuse_planted_links, run_files, run_lock
from .train.signals import Interrupted, stop_on_signals

PathLike = Union[str, Path]
EpochCallback = Callable[["Run", EpochMetrics], None]  # train(..., on_epoch_end=[f]): f(run, metrics) per epoch


@dataclass
class Run:
    """A trained model with its config, its metrics history and its folder."""

    path: Path
    config: RunConfig
    model: GenerativeModel
    history: List[Dict[str, Any]] = field(default_factory=list)
    _data: Optional[Dataset] = None
    standardizer: Optional[Standardizer] = None  # data.standardize: the training split's mean/std

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def data(self) -> Dataset:
        """The run's dataset (same seed, hence the same split and test binarization); a ``data.type: python``
        run has it only when given again (``load_run(run_dir, data=...)``)."""
        if self._data is None:
            self._data = load_data(self.config.data, self.config.seed).to(self.device)
        return self._data

    def sample(self, num_samples: int, label: Optional[int] = None,
               condition: Optional[Sequence[float]] = None) -> torch.Tensor:
        """:meth:`draw` with ``train.threads`` intra-op threads (:mod:`pyro_vae.threads`)."""
        with using_threads(pass_threads(self.config.train.threads, self.model, num_samples)):
            return self.draw(num_samples, label, condition)

    def draw(self, num_samples: int, label: Optional[int] = None,
             condition: Optional[Sequence[float]] = None) -> torch.Tensor:
        """E[x|z] for ``num_samples`` prior draws (:func:`pyro_vae.sampling.draw`: z ~ p(z), or p(z|c) at
        ``label`` or covariates ``condition``, by default the test split's), in the data's units (a
        standardised run's samples are mapped back: x = μ + s·x')."""
        x = draw(self.model, num_samples, label, condition, lambda: self.data().test_y, self.config.model.type)
        return self.to_data_units(x)

    def feature_names(self) -> Optional[List[str]]:
        """A table's feature column names (plots, sampled CSV headers); None for other data."""
        columns = getattr(self.config.model, "likelihood", None)
        if getattr(columns, "type", None) == "columns":
            return [c.name for c in columns.columns]
        if self.config.data.type != "table":
            return None
        if self.config.data.feature_columns is not None:
            return list(self.config.data.feature_columns)
        specs = getattr(self.data(), "columns", None)
        return [c.name for c in specs] if specs else None

    def label_name(self) -> str:
        """What the data's labels are called: the label column's name, the class folder, or "label"."""
        column = getattr(self.config.data, "label_column", None)
        return column or ("class folder" if self.config.data.type == "image_folder" else "label")

    def drawn(self) -> str:
        """How :meth:`sample` draws z, for picture titles."""
        if self.model.covariate_dim:
            return "z ~ p(z|c), c the held-out covariates"
        return "z ~ p(z|c)" if self.model.label_conditional else "z ~ p(z)"

    def to_data_units(self, x: torch.Tensor) -> torch.Tensor:
        """Undo ``data.standardize`` (identity for other runs)."""
        return self.standardizer.undo(x) if self.standardizer is not None else x

    def evaluate(self, num_samples: int = 100, progress: bool = False) -> Dict[str, Any]:
        """:meth:`report` with ``train.threads`` intra-op threads, for passes of up to 2¹⁵ decoded z's."""
        data = self.data()
        work = min(SAMPLES_PER_PASS, num_samples * max(1, data.num_test))
        with using_threads(pass_threads(self.config.train.threads, self.model, work, first_datapoint(data))):
            return self.report(num_samples, progress)

    def report(self, num_samples: int = 100, progress: bool = False) -> Dict[str, Any]:
        """The evaluation report (:func:`pyro_vae.evaluation.report.evaluate`): test ELBO and its parts,
        importance-sampled log p(x) with K = ``num_samples``, KL split, active units; per datapoint, nats.
        ``progress``: a progress bar (with a time estimate) for the log p(x) pass."""
        self.model.eval()
        pyro.set_rng_seed(self.config.seed)
        result = evaluation_report(self.model, self.data(), num_samples, progress=progress)
        result["epoch"] = len(self.history)
        if self.data().labels("test") is not None and not self.data().covariate_dim:
            result.update(clustering_metrics(self.model, self.data()))  # mixture priors: cluster accuracy
            result.update(classification_metrics(self.model, self.data()))  # a classifier q(y|x): held-out accuracy
        result.update(column_loglik(self.model, self.data()))  # a table's columns: log-likelihood per column kind
        # (further evaluations merge their numbers into `result` here)
        if self.config.train.tensorboard or self.config.train.mlflow:
            from .tracking import log_evaluation

            log_evaluation(self.path, result, step=len(self.history), train_config=self.config.train)
        return result

    def impute(self, frame: Any, num_samples: int = 1000, draws: Optional[int] = None) -> Any:
        """``frame`` (a pandas DataFrame with this run's table columns) with each missing feature cell filled by
        its importance-weighted conditional mean from K = ``num_samples`` draws (categorical: the weighted mode),
        or a list of ``draws`` frames of multiple imputations (:mod:`pyro_vae.evaluation.imputation`)."""
        from .evaluation.imputation import impute_frame

        self.model.eval()
        return impute_frame(self, frame, num_samples, draws)

    def write_pictures(self) -> None:
        """(Re)write samples, reconstructions, latent and ELBO-curve pictures into the run folder
        (:mod:`pyro_vae.pictures`)."""
        write_run_pictures(self)

    def write_vector_pictures(self, steps: int = 17) -> None:
        """The pictures of a run on vector data (:func:`pyro_vae.pictures.write_vector_pictures`; ``steps``: the
        vector field's grid points per axis)."""
        write_vector_pictures(self, steps)


def _resolve_paths(config: RunConfig) -> RunConfig:
    for key in ("root", "path"):  # data folders/files: absolute, so that a run folder works from anywhere
        value = getattr(config.data, key, None)
        if value:
            try:
                setattr(config.data, key, str(Path(value).expanduser().resolve()))
            except (RuntimeError, OSError) as e:  # a loop of symbolic links
                raise DataError(f"data.{key}: {value!r} cannot be resolved ({e}); expected a file or folder, not a "
                                "loop of symbolic links") from None
    return config


def _default_out(config: RunConfig) -> Path:
    return Path("runs") / f"{config.data.type}-{config.model.type}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config: Union[RunConfig, PathLike, None] = None, out_dir: Optional[PathLike] = None,
          overrides: Optional[List[str]] = None, data: Any = None, force: bool = False,
          on_epoch_end: Sequence[EpochCallback] = ()) -> Run:
    """Train ``config`` (a RunConfig, a YAML path, or None for the default) into run folder ``out_dir``.

    ``data``: your own data from Python instead of ``config.data`` (which then becomes ``data.type: python``,
    keeping the options set in it that apply to Python data, e.g. ``data.standardize: true``; a warning names
    the others):

    * ``x`` — a tensor or NumPy array ``(N, *shape)``, split by ``data.test_fraction``;
    * ``(train, test)`` — each part ``x``, ``(x, labels)`` or a ``torch.utils.data.Dataset``;
    * ``{"train": x, "test": x, "labels": y, "test_labels": y, "covariates": c, "test_covariates": c}``
      (only ``train`` required; labels are integers ``(N,)``, covariates floats ``(N, C)``);
    * a ``torch.utils.data.Dataset`` with items ``x`` or ``(x, y)``, split by ``data.test_fraction``.

    The run folder, evaluation, pictures and checkpoints are those of a configured dataset; the data itself
    is not stored, so :func:`resume` and :func:`load_run` of such a run take it again as ``data=...``
    (loading weights and sampling work without it).

    Every epoch atomically rewrites ``model.pt`` (the last epoch: weights + the full training state
    that :func:`resume` continues from), rewrites ``best.pt`` when the held-out ELBO improved, and
    appends to ``metrics.jsonl``. SIGINT/SIGTERM finish the current step, checkpoint it into
    ``model.pt`` and raise :class:`~pyro_vae.train.signals.Interrupted`; a non-finite loss raises
    :class:`~pyro_vae.errors.TrainingError` and leaves the last good ``model.pt`` in place.

    ``out_dir`` must be new, empty or (``force``) anything but a folder in use: an existing run is
    refused (continue it with :func:`resume`), and so is a non-empty folder that is not a run; with
    ``force`` the old run files are removed first. ``run.lock`` is held while training.

    ``on_epoch_end``: callbacks ``f(run, metrics)`` called after each epoch's files are written (e.g. a
    hyperparameter search reporting the held-out ELBO; an exception they raise stops the run there).
    """
    config_file = config if isinstance(config, (str, Path)) else None
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides or [])
    elif overrides:
        raise ConfigError("overrides apply to a config file; edit the RunConfig object directly instead")
    if data is not None and config.data.type != "python":  # options that apply carried over, the others named
        config.data = python_config(config.data)
    validate(config)  # cross-section rules, before any data is read
    check_trackers(config)  # train.tensorboard, train.mlflow: installed
    config = _resolve_paths(config)
    out = check_out(out_dir if out_dir is not None else _default_out(config), force)
    refuse_planted_links(out)  # a link where the run writes a file: refused before anything is written
    if force:
        check_not_replaced(config_file, out)
    run, trainer = _build(config, out, data)
    trainer.validate_data()  # bad data: an error before the run folder is created
    if not distributed.is_main():  # under torchrun only rank 0 writes the run folder
        return _fit(run, trainer, on_epoch_end)
    make_folder(out)
    with run_lock(out):
        check_out(out, force)  # again under the lock: a run started meanwhile is refused
        clean_stray_temp_files(out)
        for name in run_files(out):  # --force: the old run's files go (a half-new run never mixes with them)
            (out / name).unlink()
        write_file(out / CONFIG, save_config, config)
        write_file(out / METRICS, lambda _, path: write_atomic(path, b""), None)
        return _fit(run, trainer, on_epoch_end)


def resume(run_dir: PathLike, overrides: Optional[List[str]] = None, data: Any = None,
           on_epoch_end: Sequence[EpochCallback] = (), imports: Sequence[str] = ()) -> Run:
    """Continue run folder ``run_dir`` from its ``model.pt``, exactly where it stopped (mid-epoch after an
    interrupt): weights, optimizer, counters and every random stream are restored, so on CPU the metrics
    equal those of an uninterrupted run. ``overrides`` may set only ``train.epochs`` (to train longer)
    and ``train.progress``. ``data``: the same Python data again, for a run trained with ``train(..., data=...)``.
    ``imports``: the modules the run's import paths (``type: module:Class``) may import (see :func:`load_run`)."""
    path = _run_dir(run_dir)
    refuse_planted_links(path)
    with run_lock(path) if distributed.is_main() else nullcontext():
        clean_stray_temp_files(path)
        return _resume(path, overrides, data, on_epoch_end, imports)


def _resume(path: Path, overrides: Optional[List[str]], data: Any, on_epoch_end: Sequence[EpochCallback],
            imports: Sequence[str] = ()) -> Run:
    payload = load_checkpoint(path / CHECKPOINT)
    state = training_state(payload, path / CHECKPOINT)
    config = resumed_config(_config_of(payload, path / CHECKPOINT, imports), overrides, imports)
    validate(config)
    check_continues(state, config, path)
    run, trainer = _build(config, path, data)
    try:
        run.model.load_state_dict(payload["state_dict"])
        trainer.load_state(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise RunDirError(f"{path / CHECKPOINT}: inconsistent training state ({str(e).splitlines()[0]})") from None
    run.history = [asdict(m) for m in trainer.history]
    if distributed.is_main():
        # metrics.jsonl := the checkpoint's history (a crash between the two writes could leave a stray row);
        # config.yaml is rewritten with model.pt only (a changed train.epochs), so the two always agree
        rows = "".join(json.dumps(row) + "\n" for row in run.history)
        write_file(path / METRICS, lambda text, p: write_atomic(p, text.encode()), rows)
    return _fit(run, trainer, on_epoch_end)


def _build(config: RunConfig, out: Path, python_data: Any = None) -> Tuple[Run, Trainer]:
    """Seed, load the data, build model and trainer (identically for a new and a resumed run)."""
    pyro.set_rng_seed(config.seed)
    pyro.clear_param_store()
    device = distributed.setup(resolve_device(config.train.device))  # joins torchrun's process group, if any
    data = load_data(config.data, config.seed, python_data).to(device)
    fill_columns(config.model, getattr(data, "columns", None) or [])  # a table's columns: recorded in config.yaml
    check_run_size(config, data)  # particles, batch × data, components, evaluation work: before anything is built
    model = _build_model(config, data.shape, data.num_classes, data.covariate_dim).to(device)
    trainer = Trainer(model, data, config.train, seed=config.seed)
    return Run(out, config, model, _data=data, standardizer=data.standardizer), trainer


def _build_model(config: RunConfig, shape: Tuple[int, ...], num_classes: int,
                 covariate_dim: int = 0) -> GenerativeModel:
    """``build_model``, after a dry run on the ``meta`` device (no memory) checks that training it fits in
    RAM: 16 bytes per parameter (weights, gradients, Adam's two moments; float32). Sizes the components
    reject are a ConfigError too, never a torch traceback."""
    params = parameter_bound(to_dict(config.model), math.prod(shape))
    try:
        with torch.device("meta"):
            probe = build_model(config.model, shape, num_classes, covariate_dim=covariate_dim)
            params = max(params, sum(p.numel() for p in probe.parameters()))
    except PyroVAEError:
        raise
    except Exception:  # a component that cannot be built on meta (e.g. it calls .item()): the bound stands
        pass
    check_parameters(params)
    try:
        return build_model(config.model, shape, num_classes, covariate_dim=covariate_dim)
    except PyroVAEError:
        raise
    except Exception as e:  # e.g. a size torch or pyro refuses (RuntimeError, IndexError, ...)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise ConfigError(f"model: cannot be built with this config ({type(e).__name__}: {first})") from None


def _fit(run: Run, trainer: Trainer, functions: Sequence[EpochCallback] = ()) -> Run:
    """``trainer.fit`` with the run folder kept current by the recorders (:mod:`pyro_vae.train.recorders`):
    checkpoint first, then the metrics row (rank 0 only), then the trackers and ``functions``; the pictures
    at the end; a stop signal checkpoints where training stopped."""
    out, main = run.path, distributed.is_main()
    resumed = bool(run.history) or trainer.step > 0
    tracker = open_tracker(run.config, out, resumed, run) if main else None  # train.tensorboard, train.mlflow

    def kept() -> str:
        return (f"{out / CHECKPOINT} keeps epoch {len(run.history)} (the last good checkpoint)" if run.history
                else "no epoch finished, nothing saved")

    with stop_on_signals() as stop:  # held until the end: a signal during a save never cuts it short
        try:
            trainer.fit(recorders(run, main, tracker, functions))
        except Interrupted as e:
            finished = trainer.epoch >= run.config.train.epochs
            raise Interrupted(f"{e}; saved {out / CHECKPOINT}" + ("" if finished else
                              f"; continue with: pyro-vae train --resume {out}"), e.signum) from None
        except TrainingError as e:
            raise TrainingError(f"{e}; {kept()}") from None
        distributed.teardown()
        if stop:  # a signal after the last step (final evaluation, pictures): everything is written
            raise Interrupted(f"stopped by {stop.name} after the last epoch; every file of {out} is written",
                              stop.signum)
    return run


def _run_dir(run_dir: PathLike) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a folder (expected a run folder with {CHECKPOINT})")
    if not (path / CHECKPOINT).is_file():
        raise RunDirError(f"{path}: not a run folder (no {CHECKPOINT})")
    return path


def _config_of(payload: Dict[str, Any], file: Path, imports: Sequence[str] = ()) -> RunConfig:
    """The run config a checkpoint holds; its import paths resolve only to modules already imported or in
    ``imports`` (:func:`~pyro_vae.registry.only_imported`): a run folder executes nothing on its own."""
    try:
        with only_imported(imports):
            return from_dict(RunConfig, payload["config"])
    except ImportPathError as e:  # the run names the user's own module, which is not importable here
        raise ImportPathError(f"{file}: {e}") from None
    except (KeyError, PyroVAEError) as e:
        raise RunDirError(f"{file}: inconsistent checkpoint ({str(e).splitlines()[0]})") from None


def load_run(run_dir: PathLike, device: Union[str, torch.device] = "cpu",
             which: Literal["last", "best"] = "last", data: Any = None, imports: Sequence[str] = ()) -> Run:
    """Load the model of run folder ``run_dir`` (weights only: never executes code from the file, and imports
    no module the run names unless it is already imported or listed in ``imports``, e.g. ``["my_project.priors"]``).

    ``which``: ``last`` is ``model.pt`` (the last epoch, or the step an interrupt stopped at), ``best``
    is ``best.pt`` (the epoch with the highest held-out ELBO). ``data``: for a run trained with
    ``train(..., data=...)``, the same data again (needed by evaluation and pictures, not by sampling)."""
    path = _run_dir(run_dir)
    file = path / {"last": CHECKPOINT, "best": BEST}[which]
    payload = load_checkpoint(file)
    config = _config_of(payload, file, imports)
    try:
        model = build_model(config.model, tuple(payload["data_shape"]), payload["num_classes"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError, PyroVAEError) as e:
        raise RunDirError(f"{file}: inconsistent checkpoint ({str(e).splitlines()[0]})") from None
    model.to(device).eval()
    stats = payload.get("data_stats")
    run = Run(path, config, model, list(payload.get("history", [])),
              standardizer=Standardizer.from_dict(stats) if stats else None)
    if data is not None:
        if config.data.type != "python":
            raise ConfigError(f"data: this run reads its data from data.type {config.data.type!r}; "
                              "data=... is for runs trained with train(..., data=...)")
        run._data = load_data(config.data, config.seed, data).to(device)
    return run
