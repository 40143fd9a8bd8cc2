"""MLflow logging (``train.mlflow: true``; needs the optional extra ``pip install 'pyro-vae[mlflow]'``).

One MLflow run per run folder, its id kept in ``RUN_DIR/mlflow.json`` so that ``pyro-vae train --resume``
continues it. Logged: the resolved config as params (flattened, ``model.prior.type``), per epoch the
train/test ELBO, seconds and bits/dim (step = epoch), after ``pyro-vae evaluate`` every scalar of the report
under ``eval/``, and at the end of training the pictures and ``config.yaml`` as artifacts. The store is
MLflow's own choice: ``MLFLOW_TRACKING_URI`` when set (a server, ``sqlite:///…``, ``file:…``), else MLflow's
local default (``mlflow.db`` in the current folder); the experiment is ``MLFLOW_EXPERIMENT_NAME`` or ``pyro-vae``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

from ..errors import ConfigError
from .base import Tracker

PathLike = Union[str, Path]
RECORD = "mlflow.json"  # {"run_id", "tracking_uri"} of the run folder's MLflow run
EXPERIMENT = "pyro-vae"


def client() -> Any:
    """An ``MlflowClient`` on the tracking URI; a ConfigError (one line) when mlflow is missing or the store
    cannot be opened."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("train.mlflow: needs the mlflow package (pip install 'pyro-vae[mlflow]', or set "
                          "train.mlflow: false)") from None
    try:
        return MlflowClient()
    except Exception as e:  # a malformed or unreachable MLFLOW_TRACKING_URI
        raise ConfigError(f"train.mlflow: cannot open the MLflow store {os.environ.get('MLFLOW_TRACKING_URI')!r} "
                          f"(MLFLOW_TRACKING_URI): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def flatten(tree: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``{"model": {"prior": {"type": "gmm"}}}`` -> ``("model.prior.type", "gmm")``, ..."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def _experiment_id(mlflow_client: Any) -> str:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name)
    except Exception:  # created meanwhile by another process of a sweep
        return mlflow_client.get_experiment_by_name(name).experiment_id


def _scalars(values: Dict[str, Any], prefix: str = "") -> List[Tuple[str, float]]:
    return [(prefix + k, float(v)) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")]


class MlflowTracker(Tracker):
    """Logs a training run to MLflow: ``log_epoch`` after each epoch, ``log_pictures`` at the end, then ``close``."""

    def __init__(self, config: Any, folder: PathLike, resumed: bool = False) -> None:
        from ..config.schema import to_dict

        self.client, self.folder = client(), Path(folder)
        record = self.folder / RECORD
        if resumed and record.is_file():  # --resume: the same MLflow run goes on
            self.run_id = json.loads(record.read_text())["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        run = self.client.create_run(_experiment_id(self.client), run_name=self.folder.name,
                                     tags={"pyro_vae.run_folder": str(self.folder.resolve())})
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in flatten(to_dict(config))]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        from ..train.checkpoint import write_atomic

        write_atomic(record, json.dumps({"run_id": self.run_id, "tracking_uri": self.client.tracking_uri}).encode())

    def log_metrics(self, values: Dict[str, Any], step: int, prefix: str = "") -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in _scalars(values, prefix)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_epoch(self, trainer: Any, metrics: Any) -> None:
        self.log_metrics({"train_elbo": metrics.train_elbo, "test_elbo": metrics.test_elbo,
                          "epoch_seconds": metrics.seconds, "test_bits_per_dim": metrics.test_bits_per_dim},
                         metrics.epoch)

    def log_pictures(self, run: Any, step: int) -> None:
        """The run folder's pictures and ``config.yaml`` as artifacts."""
        for path in sorted([*self.folder.glob("*.png"), self.folder / "config.yaml"]):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def log_evaluation(folder: PathLike, report: Dict[str, Any], step: int) -> None:
    """Every scalar of an evaluation report under ``eval/`` in the run folder's MLflow run."""
    record = Path(folder) / RECORD
    if not record.is_file():  # the run was trained without train.mlflow
        return
    tracker = MlflowTracker.__new__(MlflowTracker)
    tracker.client, tracker.folder = client(), Path(folder)
    tracker.run_id = json.loads(record.read_text())["run_id"]
    tracker.log_metrics(report, step, prefix="eval/")
