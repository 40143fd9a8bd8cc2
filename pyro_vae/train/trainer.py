"""The training loop: SVI steps over shuffled minibatches, a progress bar, per-epoch evaluation."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn

try:  # notebook bars need ipywidgets; without it tqdm.auto warns at import (and draws text bars anyway)
    import ipywidgets  # noqa: F401
    from tqdm.auto import tqdm
except ImportError:
    from tqdm import tqdm

from ..data.dataset import Dataset
from ..errors import ConfigError, TrainingError
from ..evaluation.bits import bits_per_dim, coded_dims
from ..evaluation.bounds import elbo_and_iwae
from ..fast.notify import notify_stderr
from ..likelihoods.gaussian import GaussianLikelihood
from ..models.base import GenerativeModel, data_likelihood
from ..threads import training_threads, using_threads
from .config import TrainConfig
from . import distributed, stopping
from .callbacks import Callback, Callbacks, as_callbacks
from .checkpoint import check_trainer_state, rng_state, set_rng_state
from .factory import build_engine
from .phases import MAIN, PRETRAIN, PretrainEngine, pretrain_epochs
from .signals import Interrupted, StopFlag, stop_on_signals


@dataclass
class EpochMetrics:
    """One line of ``metrics.jsonl``: per-datapoint ELBOs in nats (higher is better)."""

    epoch: int
    step: int
    train_elbo: float
    test_elbo: float
    seconds: float
    engine: Optional[Dict[str, Any]] = None  # which path computed the loss and why (engine.describe())
    test_bits_per_dim: Optional[float] = None  # −test_elbo / (D ln 2) for a likelihood over discrete levels
    threads: Optional[int] = None  # intra-op CPU threads of the epoch's steps (train.threads)
    test_iwae: Optional[float] = None  # log (1/K) Σ_k w_k on the held-out split, K = train.eval_samples


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device: 'cuda' requested but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


class Trainer:
    """Fits ``model.model``/``model.guide`` to ``data``, one engine step (SVI by default) per minibatch."""

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig, seed: int = 0) -> None:
        self.model, self.data, self.config = model, data, config
        if data.labeled is not None and not (isinstance(model, GenerativeModel) and model.partial_labels):
            raise ConfigError(f"data.labeled: {type(model).__name__} does not learn from partly labelled data "
                              "(model.type: m2 does); remove data.labeled")
        self.engine = build_engine(model, config)
        self.generator = torch.Generator().manual_seed(seed)  # the batch order (one permutation per epoch)
        self.epoch, self.step = 0, 0  # finished epochs, optimizer steps taken
        self.history: List[EpochMetrics] = []
        # Position inside the current epoch (all zero between epochs): the batch-order state at the epoch's
        # start, the steps done in it and the running −loss sum / datapoint count of its training ELBO.
        self.batch, self.partial = 0, (0.0, 0)
        self.epoch_order = self.generator.get_state()
        self.stop = StopFlag()  # set by SIGINT/SIGTERM (see fit); checked after every step
        self.seed = seed
        # A model with a pretraining phase (pyro_vae.train.phases) runs it first, with its own optimizer;
        # main_start is the step the main phase began at (KL warm-up counts from there).
        self.pretrain_epochs = pretrain_epochs(model)
        self.phase = PRETRAIN if self.pretrain_epochs > 0 else MAIN
        self.pretrain_epoch, self.pretrain_history, self.main_start = 0, [], 0
        self.pretrain_engine = PretrainEngine(model, config) if self.pretrain_epochs > 0 else None
        self.start_elbo: Optional[float] = None  # the untrained model's first-minibatch ELBO (divergence reference)
        self.threads: Optional[int] = None  # intra-op CPU threads, chosen when fit starts (train.threads)

    # --- checkpoint state ---------------------------------------------------------------------------
    def state(self) -> Dict:
        """Everything needed to continue bit-for-bit: optimizer, counters, history, position inside the
        epoch, the batch-order generator (at the epoch's start) and every global RNG stream."""
        return {"optimizer": self.engine.state_dict(), "epoch": self.epoch, "step": self.step,
                "history": [asdict(m) for m in self.history], "batch": self.batch,
                "partial": [float(self.partial[0]), int(self.partial[1])],
                "generator": self.epoch_order if self.batch else self.generator.get_state(),
                "rng": rng_state(), "start_elbo": self.start_elbo, **self._phase_state()}

    def _phase_state(self) -> Dict:
        if self.pretrain_engine is None:
            return {}
        return {"phase": self.phase, "main_start": self.main_start,
                "pretrain": {"epoch": self.pretrain_epoch, "history": list(self.pretrain_history),
                             "optimizer": self.pretrain_engine.state_dict()}}

    def load_state(self, state: Dict) -> None:
        """Continue from :meth:`state` (call after the model's weights are loaded); a state that does not fit
        this run (position past the epoch's end, counters out of range) is a ValueError."""
        problem = check_trainer_state(state, len(state.get("history", [])) if isinstance(state, dict) else 0)
        steps = self.steps_per_epoch
        if problem is None and not 0 <= state.get("batch", 0) <= steps:  # (== steps: stopped before the epoch's end)
            problem = f"trainer.batch: {state.get('batch')} is not a position in an epoch of {steps} steps"
        if problem is None and state.get("step", 0) < state.get("epoch", 0) * steps:
            problem = f"trainer.step: {state['step']} steps cannot finish {state['epoch']} epochs of {steps} steps"
        if problem is not None:
            raise ValueError(problem)
        self.engine.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = [EpochMetrics(**row) for row in state["history"]]
        self.batch = int(state.get("batch", 0))
        total, count = state.get("partial", (0.0, 0))
        self.partial = (float(total), int(count))
        self.generator.set_state(state["generator"])
        self.epoch_order = self.generator.get_state()
        if "rng" in state:
            set_rng_state(state["rng"])
        if self.pretrain_engine is not None:
            self.phase, self.main_start = state.get("phase", MAIN), int(state.get("main_start", 0))
            pretrain = state.get("pretrain", {})
            self.pretrain_epoch = int(pretrain.get("epoch", self.pretrain_epochs))
            self.pretrain_history = [float(v) for v in pretrain.get("history", [])]
            if "optimizer" in pretrain:
                self.pretrain_engine.load_state_dict(pretrain["optimizer"])
        start = state.get("start_elbo")
        self.start_elbo = float(start) if start is not None else None

    @property
    def steps_per_epoch(self) -> int:
        return self.data.num_batches("train", self.config.batch_size, shuffle=True)

    # --- the loop ----------------------------------------------------------------------------------
    def validate_data(self) -> None:
        """DataError when the data is outside the likelihood's support (before anything is trained or written);
        a model without a :class:`~pyro_vae.likelihoods.base.Likelihood` (``data_likelihood()`` None) checks its own."""
        likelihood = data_likelihood(self.model)
        if likelihood is not None:
            self.data.validate(likelihood.validate)

    def _check(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise TrainingError(nonfinite_message(self, loss))

    def _stop_requested(self) -> bool:
        """True once a stop signal arrived (the hook a multi-process run makes collective)."""
        return bool(self.stop)

    def train_epoch(self, bar: Optional[tqdm] = None, engine=None) -> float:
        """One pass over the training set (the rest of it, when resuming mid-epoch); returns the mean
        per-datapoint training ELBO (``engine``: the pretraining engine's loss instead). Raises :class:`Interrupted`
        after the step during which a stop signal came."""
        engine = engine or self.engine
        self.model.train()
        if self.batch == 0:  # a fresh epoch (else: resuming one, the generator is back at its start)
            self.epoch_order = self.generator.get_state()
        total, count = self.partial
        for x, y in self.data.batches("train", self.config.batch_size, shuffle=True, generator=self.generator,
                                      skip=self.batch):
            if engine is self.engine:
                self.engine.set_step(self.step - self.main_start)  # KL warm-up β(step)
            try:
                loss = engine.step(x, y)
            except ValueError as e:  # e.g. pyro's SVI validating a distribution whose parameters went NaN
                if not (self.nonfinite_params() or "invalid values" in str(e)):
                    raise
                self.step += 1
                raise TrainingError(f"{nonfinite_message(self, math.nan)}; the step failed with: "
                                    f"{str(e).splitlines()[0][:160]}") from None
            self.step += 1
            self._check(loss)
            if self.start_elbo is None and engine is self.engine:  # (not a pretraining phase's loss)
                self.start_elbo = -loss / x.shape[0]
            total, count = total - loss, count + x.shape[0]
            self.batch, self.partial = self.batch + 1, (total, count)
            if bar is not None:
                bar.update(1)
                epoch = (self.pretrain_epoch if self.phase == PRETRAIN else self.epoch) + 1
                bar.set_postfix(epoch=epoch, step=self.step, elbo=f"{total / count:.2f}", refresh=False)
            if self._stop_requested():
                where = f"pretrain epoch {self.pretrain_epoch + 1}" if self.phase == PRETRAIN else f"epoch {self.epoch + 1}"
                raise Interrupted(f"stopped by {self.stop.name} at {where}, step {self.step} "
                                  f"({self.batch} batches into the epoch)", self.stop.signum)
        self.batch, self.partial = 0, (0.0, 0)
        return total / count

    def fit(self, callbacks: Optional[Iterable[Callback]] = None) -> List[EpochMetrics]:
        """:meth:`fit_epochs` with ``train.threads`` intra-op threads (:mod:`pyro_vae.threads`), said once on
        stderr above the progress bar (``train.progress``); the caller's thread count is put back afterwards.
        ``callbacks`` (:mod:`pyro_vae.train.callbacks`): ``on_epoch_end`` after each epoch, ``on_phase_end`` after
        each phase (the main one's in the caller's threads), ``on_interrupt`` when a stop signal ended training
        with finite weights (non-finite ones are a :class:`TrainingError`: never handed on to be saved)."""
        callbacks = as_callbacks(callbacks)
        self.threads, reason = training_threads(self.model, self.data, self.config, distributed.world_size())
        if self.config.progress and distributed.is_main():
            notify_stderr(f"pyro-vae: {self.threads} CPU thread{'s' * (self.threads != 1)} ({reason})")
        try:
            with using_threads(self.threads):
                history = self.fit_epochs(callbacks)
        except Interrupted as e:
            bad = self.nonfinite_params()
            if bad:  # e.g. a signal in the first steps of a diverging run: never save those weights
                shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
                raise TrainingError(f"{e}; not saved: non-finite weights ({shown}); likely causes: "
                                    f"{'; '.join(likely_causes(self))}") from None
            callbacks.on_interrupt(self, e)
            raise
        callbacks.on_phase_end(self, MAIN)
        return history

    def fit_epochs(self, callbacks: Optional[Iterable[Callback]] = None) -> List[EpochMetrics]:
        """Train until ``config.epochs``; ``callbacks.on_epoch_end`` runs after each (e.g. to checkpoint). A model
        with a pretraining phase first runs it (``on_epoch_end(trainer, None)`` after each of its epochs,
        ``on_phase_end(trainer, "pretrain")`` after ``end_pretraining``).

        SIGINT/SIGTERM during ``fit`` finish the current step, then raise :class:`Interrupted` with
        :meth:`state` still consistent (the caller checkpoints it); a non-finite loss raises
        :class:`TrainingError` naming epoch and step before ``on_epoch_end`` could save bad weights.
        """
        callbacks = as_callbacks(callbacks)
        self.validate_data()
        dims = coded_dims(self.model, (x for x, _ in self.data.batches("test", 1000)))  # None: no bits/dim
        if self.phase == PRETRAIN:
            self.pretrain(callbacks)
        remaining = (self.config.epochs - self.epoch) * self.steps_per_epoch - self.batch
        show = self.config.progress and distributed.is_main()  # one bar under torchrun: rank 0's
        with stop_on_signals() as self.stop, tqdm(total=max(remaining, 0), disable=not show, desc="train",
                                                 unit="step", dynamic_ncols=True) as bar:
            while self.epoch < self.config.epochs and not self.stopped_early():
                start = time.perf_counter()
                self.schedule_lr()
                train_elbo = self.train_epoch(bar)
                self.model.eval()
                bounds = elbo_and_iwae(self.model, self.data, self.config.eval_samples)
                held_out, held_out_iwae = (distributed.average(bounds[k]) for k in ("elbo", "iwae"))
                self._check_divergence(train_elbo, held_out)
                self.epoch += 1
                self._check_weights(held_out)
                metrics = EpochMetrics(self.epoch, self.step, train_elbo, held_out, time.perf_counter() - start,
                                       self.engine.describe(),
                                       None if dims is None else bits_per_dim(held_out, dims), self.threads,
                                       held_out_iwae)
                self.history.append(metrics)
                bar.set_postfix(epoch=self.epoch, step=self.step, elbo=f"{train_elbo:.2f}",
                                test=f"{held_out:.2f}")
                callbacks.on_epoch_end(self, metrics)
                if self._stop_requested():  # a signal during the epoch's evaluation: stop at its boundary
                    raise Interrupted(f"stopped by {self.stop.name} after epoch {self.epoch}, step {self.step}",
                                      self.stop.signum)
        if show and self.stopped_early():
            notify_stderr(f"pyro-vae: stopped after epoch {self.epoch} of {self.config.epochs}: "
                          f"{stopping.describe(self.rows(), self.config.early_stopping)}")
        return self.history

    def rows(self) -> List[Dict[str, Any]]:
        """The history as ``metrics.jsonl`` rows (dicts)."""
        return [asdict(m) for m in self.history]

    def stopped_early(self) -> bool:
        """``train.early_stopping``: the held-out bound has levelled off (:mod:`pyro_vae.train.stopping`)."""
        return self.config.early_stopping.patience is not None and stopping.stopped_early(
            self.rows(), self.config.early_stopping)

    def schedule_lr(self) -> None:
        """``train.lr_decay``: set the main engine's learning rate for the epoch about to run. A function of the
        checkpointed epoch counter, so a resumed run continues the schedule (a constant lr is left untouched)."""
        decay = self.config.lr_decay
        if decay.factor != 1.0:
            self.engine.set_lr(decay.lr(self.config.lr, self.epoch))

    def pretrain(self, callbacks: Callbacks) -> None:
        """The pretraining phase (its own progress bar), then ``model.end_pretraining`` and the switch to main."""
        steps_per_epoch = self.steps_per_epoch
        remaining = (self.pretrain_epochs - self.pretrain_epoch) * steps_per_epoch - self.batch
        show = self.config.progress and distributed.is_main()
        with stop_on_signals() as self.stop, tqdm(total=max(remaining, 0), disable=not show, desc=PRETRAIN,
                                                 unit="step", dynamic_ncols=True) as bar:
            while self.pretrain_epoch < self.pretrain_epochs:
                loss = -self.train_epoch(bar, self.pretrain_engine)  # per datapoint
                self._check(loss)
                self.pretrain_epoch += 1
                self.pretrain_history.append(loss)
                bar.set_postfix(epoch=self.pretrain_epoch, loss=f"{loss:.2f}")
                callbacks.on_epoch_end(self, None)
        self.model.eval()
        with torch.no_grad():
            self.model.end_pretraining(self.data, self.seed)
        self.phase, self.main_start = MAIN, self.step
        callbacks.on_phase_end(self, PRETRAIN)

    def nonfinite_params(self) -> List[str]:
        """Names of the model's parameters holding NaN or ±Inf."""
        return [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()]

    def _check_divergence(self, train_elbo: float, held_out: float) -> None:
        """TrainingError when an epoch's train or held-out ELBO falls more than ``divergence_nats`` per data
        dimension below the best seen (the untrained model's first minibatch counts): a diverging run."""
        bound = self.config.divergence_nats
        if bound is None or not (math.isfinite(train_elbo) and math.isfinite(held_out)):
            return
        seen = [m.test_elbo for m in self.history] + [m.train_elbo for m in self.history]
        seen += [self.start_elbo] if self.start_elbo is not None else []
        if not seen:
            return
        best, dims = max(seen), math.prod(self.data.shape)
        name, worst = min((("train", train_elbo), ("held-out", held_out)), key=lambda t: t[1])
        drop = (best - worst) / dims
        if drop > bound:
            raise TrainingError(
                f"training diverged at epoch {self.epoch + 1}, step {self.step}: {name} ELBO {worst:.6g} nats is "
                f"{drop:.3g} nats per data dimension below the best so far ({best:.6g}; limit "
                f"train.divergence_nats={bound:g}); likely causes: " + "; ".join(likely_causes(self)))

    def _check_weights(self, held_out: float) -> None:
        """Before an epoch is recorded (and checkpointed): finite test ELBO and finite weights."""
        bad = self.nonfinite_params()
        if bad or not math.isfinite(held_out):
            raise TrainingError(nonfinite_message(self, held_out, bad, where="held-out evaluation after"))


def nonfinite_message(trainer: Trainer, value: float, bad_params: Optional[List[str]] = None,
                      where: str = "") -> str:
    """Where training broke (epoch, step), what is non-finite, and the likely causes with this run's values."""
    if bad_params is None:
        bad_params = trainer.nonfinite_params()
    epoch = trainer.epoch if where else trainer.epoch + 1
    lines = [f"non-finite {'test ELBO' if where else 'loss'} ({value}) at {where + ' ' if where else ''}"
             f"epoch {epoch}, step {trainer.step}"]
    if bad_params:
        shown = ", ".join(bad_params[:4]) + (f" and {len(bad_params) - 4} more" if len(bad_params) > 4 else "")
        lines.append(f"non-finite weights after the update (NaN/Inf gradients): {shown}")
    lines.append("likely causes: " + "; ".join(likely_causes(trainer)))
    return "; ".join(lines)


def likely_causes(trainer: Trainer) -> List[str]:
    """Why a run blows up, most likely first, with this run's values."""
    x = trainer.data.tensors("train")[0] if trainer.data.in_memory else None  # streamed: no range at hand
    causes = [f"a learning rate too high (train.lr={trainer.config.lr})"]
    likelihood = data_likelihood(trainer.model)
    if isinstance(likelihood, GaussianLikelihood):
        causes.append(f"a Gaussian sigma too small (model.likelihood.sigma={likelihood.config.sigma:g})")
    if x is not None:
        causes.append(f"data outside the likelihood's range (training data in [{float(x.min()):g}, {float(x.max()):g}])")
    if trainer.config.clip_norm is None:
        causes.append("no gradient clipping (train.clip_norm=null)")
    return causes
