"""Typed config of the training loop (``train:`` in YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from .schema import component, opt
from .validators import fraction_or_one, non_negative, positive
from ..registry import OBJECTIVES


def _default_objective() -> Any:
    return OBJECTIVES.get("elbo").config_cls()


def _thread_count(x: Any) -> bool:
    return x == "auto" or (isinstance(x, int) and not isinstance(x, bool) and x >= 1)


@dataclass
class LRDecayConfig:
    """Step decay of the main phase's learning rate: lr(epoch) = train.lr · factor^⌊epoch / every_epochs⌋."""

    factor: float = opt(1.0, "multiply the learning rate by this every `every_epochs` epochs (1.0: constant)",
                        fraction_or_one, "a number in (0, 1]")
    every_epochs: int = opt(10, "epochs between two decays", positive, "an integer >= 1")

    def lr(self, base: float, epoch: int) -> float:
        """The learning rate of (0-based) main-phase epoch ``epoch``."""
        return base * self.factor ** (epoch // self.every_epochs)


@dataclass
class EarlyStoppingConfig:
    """Stop once the held-out bound m levels off: after epoch t when max(m_{t−p+1..t}) ≤ max(m_{1..t−p}) + min_delta
    (p = ``patience``). With ``data.validation`` set, m is read on the validation slice, never the test split."""

    patience: Optional[int] = opt(None, "epochs the held-out bound may go without rising by more than min_delta "
                                        "before training stops (null: train all train.epochs)",
                                  positive, "an integer >= 1 or null")
    min_delta: float = opt(0.0, "nats per datapoint the held-out bound must rise by to count as a rise",
                           non_negative, "a number >= 0")
    monitor: Literal["elbo", "iwae"] = opt(
        "elbo", "the bound watched: elbo (test_elbo) or iwae (test_iwae, log (1/K) Σ_k w_k with "
                "K = train.eval_samples: closer to log p(x), e.g. for an IWAE objective)")


@dataclass
class TrainConfig:
    epochs: int = opt(100, "passes over the training set", positive, "an integer >= 1")
    batch_size: int = opt(64, "datapoints per SVI step", positive, "an integer >= 1")
    lr: float = opt(1e-3, "Adam learning rate", positive, "a number > 0")
    lr_decay: LRDecayConfig = field(default_factory=LRDecayConfig)
    clip_norm: Optional[float] = opt(10.0, "clamp every gradient entry to [−clip_norm, clip_norm] before the Adam step "
                                           "(Pyro's ClippedAdam; null: off)", positive, "a number > 0 or null")
    objective: Any = component(OBJECTIVES, _default_objective, "the variational objective fitted by SVI")
    divergence_nats: Optional[float] = opt(
        100.0, "stop (exit 1) when an epoch's train or held-out ELBO falls more than this many nats per data "
              "dimension below the best seen, the untrained model's first minibatch included: a diverging run "
              "(null: off)", positive, "a number > 0 or null")
    eval_samples: int = opt(10, "samples of z per test point for the per-epoch test ELBO", positive, "an integer >= 1")
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    device: Literal["auto", "cpu", "cuda"] = opt("auto", "auto picks CUDA when present")
    engine: Literal["auto", "torch", "svi"] = opt(
        "auto", "how a step is taken: torch (differentiable_loss + torch Adam), svi (pyro SVI); auto: torch "
                "when the objective has differentiable_loss, else svi")
    replay: bool = opt(True, "torch engine, fused objectives: record the loss's tensor ops once per batch shape and "
                             "replay them (checked against the eager program first; stays eager if they differ "
                             "or the program reads tensor values)")
    progress: bool = opt(True, "show a tqdm progress bar")
    tensorboard: bool = opt(False, "also log ELBO parts, evaluation numbers and image grids to RUN_DIR/tensorboard "
                                   "(optional extra: pip install 'pyro-vae[tensorboard]')")
    mlflow: bool = opt(False, "also log the config, per-epoch metrics, evaluation numbers and pictures to MLflow "
                              "(MLFLOW_TRACKING_URI, else MLflow's local default; optional extra: "
                              "pip install 'pyro-vae[mlflow]')")
    num_images: int = opt(64, "images in samples.png / reconstructions.png", positive, "an integer >= 1")
    threads: Union[Literal["auto"], int] = opt(
        "auto", "intra-op CPU threads of training, evaluation and sampling; auto: one per 40M multiply-adds of "
                "a step, at most the CPUs this process may use and other programs leave free (1 for small "
                "networks); OMP_NUM_THREADS or torch.set_num_threads, when set, win over auto",
        _thread_count, "'auto' or an integer >= 1")
