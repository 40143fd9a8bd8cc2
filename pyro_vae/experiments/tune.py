"""``pyro-vae tune``: hyperparameter search with Optuna, each trial a run folder scored on a validation slice.

The search space is a YAML mapping from config keys to distributions::

    train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    model.latent_dim: {type: int, low: 2, high: 16}
    model.prior: {type: categorical, choices: [normal, gmm]}

(``float`` and ``int`` take ``low``, ``high``, optional ``log: true`` or ``step``; ``categorical`` takes
``choices``.) Every trial trains with ``data.validation`` set: that fraction of the training split is held out
and the objective is its ELBO after the last epoch (maximised); the test split is never read. Each epoch's
validation ELBO is reported to Optuna, whose pruner may stop a poor trial early. The study lives in
``--storage`` (default ``sqlite:///OUT/study.db``); several processes or machines given the same URL and
``--study`` share it. Trial N of study S trains into ``OUT/S/trial-N``. ``OUT/best.yaml`` is the best trial's
config without ``data.validation``: ``pyro-vae train OUT/best.yaml`` trains it on the whole training split and
scores it on the test split.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml

from ..config.loading import read_yaml
from ..errors import ConfigError, OutputError, PyroVAEError, shown

PathLike = Union[str, Path]
KINDS = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}
OPTIONAL = {"float": ("log", "step"), "int": ("log", "step"), "categorical": ()}


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("tune: needs the optuna package (pip install 'pyro-vae[tune]')") from None
    return optuna


def read_space(path: PathLike) -> Dict[str, Dict[str, Any]]:
    """The search space in YAML file ``path``, checked: each key a config key, each value a distribution."""
    space = read_yaml(path)
    if not space:
        raise ConfigError(f"--space {shown(path)}: empty; expected config keys mapped to distributions, e.g. "
                          "train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}")
    for key, dist in space.items():
        where = f"--space {shown(path)}: {key}"
        if not isinstance(dist, dict) or dist.get("type") not in KINDS:
            raise ConfigError(f"{where}: expected a mapping with type float, int or categorical, got {dist!r}")
        kind = dist["type"]
        missing = [k for k in KINDS[kind] if k not in dist]
        unknown = [k for k in dist if k not in ("type", *KINDS[kind], *OPTIONAL[kind])]
        if missing or unknown:
            raise ConfigError(f"{where}: {kind} needs {', '.join(KINDS[kind])}" +
                              (f" (missing {', '.join(missing)})" if missing else f"; unknown {', '.join(unknown)}"))
        if kind == "categorical":
            if not isinstance(dist["choices"], list) or not dist["choices"]:
                raise ConfigError(f"{where}: choices must be a non-empty list")
        else:
            number = int if kind == "int" else (int, float)
            if not all(isinstance(dist[k], number) and not isinstance(dist[k], bool) for k in ("low", "high")) \
                    or dist["low"] > dist["high"]:
                raise ConfigError(f"{where}: expected {kind} numbers low <= high, got {dist['low']!r}, "
                                  f"{dist['high']!r}")
            if dist.get("log") and dist["low"] <= 0:
                raise ConfigError(f"{where}: log: true needs low > 0, got {dist['low']!r}")
    return space


def suggest(trial: Any, space: Dict[str, Dict[str, Any]]) -> List[str]:
    """The trial's values as ``key=value`` overrides."""
    overrides = []
    for key, dist in space.items():
        kind, options = dist["type"], {k: dist[k] for k in OPTIONAL[dist["type"]] if k in dist}
        if kind == "float":
            value: Any = trial.suggest_float(key, float(dist["low"]), float(dist["high"]), **options)
        elif kind == "int":
            value = trial.suggest_int(key, dist["low"], dist["high"], **options)
        else:
            value = trial.suggest_categorical(key, dist["choices"])
        overrides.append(f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    return overrides


def _check_space_keys(config: Optional[PathLike], overrides: Sequence[str], space: Dict[str, Any],
                      validation: float) -> None:
    """Each value of the space (its bounds, its choices) gives a valid config: checked before any trial."""
    from ..config.run import load_config
    from ..validation import validate

    for key, dist in space.items():
        values = dist["choices"] if dist["type"] == "categorical" else [dist["low"], dist["high"]]
        for value in values:
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            try:
                validate(load_config(config, [*overrides, f"data.validation={validation}", f"{key}={text}"]))
            except ConfigError as e:
                raise ConfigError(f"{e} (search space {key}={text})") from None


def open_study(optuna: Any, storage: str, name: str) -> Any:
    """The study ``name`` in ``storage`` (created if new, maximising); a ConfigError when it cannot be opened."""
    try:
        return optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                   pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    except Exception as e:  # a bad URL, a missing driver, an unreachable server, a study of the other direction
        raise ConfigError(f"--storage {storage!r}: cannot open the study ({str(e).splitlines()[0] or type(e).__name__})"
                          ) from None


def objective(config: Optional[PathLike], overrides: Sequence[str], space: Dict[str, Any], out: Path,
              validation: float) -> Any:
    """The trial function: train ``out/trial-N`` (``out``: the study's folder) with the suggested values, report
    each epoch's validation ELBO (pruning when Optuna says so), return the last one."""
    import optuna

    from ..run import train

    def run_trial(trial: Any) -> float:
        values = suggest(trial, space)

        def report(run: Any, metrics: Any) -> None:
            trial.report(metrics.test_elbo, metrics.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {metrics.epoch}")

        folder = out / f"trial-{trial.number}"
        trial.set_user_attr("run_folder", str(folder))
        run = train(config, folder, [*overrides, f"data.validation={validation}", "train.progress=false", *values],
                    on_epoch_end=[report])
        return run.history[-1]["test_elbo"]

    return run_trial


def _optimize(config: Optional[PathLike], overrides: Sequence[str], space: Dict[str, Any], out: str,
              validation: float, storage: str, name: str, trials: int) -> None:
    """One worker process: take trials from the shared study until ``trials`` have finished or been pruned."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(storage=storage, study_name=name,
                              pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(objective(config, overrides, space, Path(out) / name, validation), n_trials=trials,
                   callbacks=[optuna.study.MaxTrialsCallback(trials, states=states)], catch=(PyroVAEError,))


def tune(config: Optional[PathLike], space_file: PathLike, out: PathLike = "tune", trials: int = 20,
         storage: Optional[str] = None, workers: int = 1, validation: float = 0.1, study: str = "pyro-vae",
         overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Search ``space_file``'s hyperparameters of ``config``; returns the best trial's ``number``, ``value``
    (validation ELBO), ``params`` and ``config`` (the path of ``out/best.yaml``)."""
    optuna = optuna_module()
    if trials < 1:
        raise ConfigError(f"--trials: expected an integer >= 1, got {trials}")
    if workers < 1:
        raise ConfigError(f"--workers: expected an integer >= 1, got {workers}")
    if not 0 < validation < 1:
        raise ConfigError(f"--validation: expected a fraction in (0, 1), got {validation}")
    space = read_space(space_file)
    _check_space_keys(config, overrides, space, validation)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {shown(out)}: is a file, not a folder")
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    open_study(optuna, url, study)
    out.mkdir(parents=True, exist_ok=True)
    args = (config, list(overrides), space, str(out), validation, url, study, trials)
    if workers == 1:
        _optimize(*args)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_optimize, args=args) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return write_best(optuna.load_study(storage=url, study_name=study), out)


def write_best(study: Any, out: Path) -> Dict[str, Any]:
    """``out/best.yaml``: the best trial's resolved config with ``data.validation`` off (ready for ``pyro-vae
    train``)."""
    from ..config.run import load_config, save_config

    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError("tune: no trial finished (see the trial folders' errors)") from None
    config = load_config(Path(best.user_attrs["run_folder"]) / "config.yaml")
    config = copy.deepcopy(config)
    config.data.validation = None
    config.train.progress = True
    save_config(config, out / "best.yaml")
    return {"number": best.number, "value": best.value, "params": best.params, "config": str(out / "best.yaml")}
