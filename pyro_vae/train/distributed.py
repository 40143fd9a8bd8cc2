"""Data-parallel training with PyTorch's own engine: DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m pyro_vae train CONFIG --out DIR`` starts N processes; each sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``. :func:`setup` joins the process group (gloo on CPU, NCCL on
CUDA, one GPU per process). Every rank draws the same shuffled order of the training set (same
seed), and each global minibatch of ``train.batch_size`` points is sharded ``x[rank::N]``: rank r
computes −ELBO of its shard, DDP averages the gradients during ``backward`` and, scaled by N, they
are exactly the gradient of the global minibatch's summed loss. Model noise (z ~ q, dynamic
binarization) is drawn from a per-rank stream, so a run matches single-process training in
expectation, and exactly where the noise is fixed. Metrics are summed/averaged over ranks; only
rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .config import TrainConfig
from .engine import TorchEngine


def is_distributed() -> bool:
    """True inside an initialized process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a plain single process): the one process that writes files and prints."""
    return rank() == 0


def launched_as_main() -> bool:
    """Rank 0 of a torchrun launch (its ``RANK``) or a plain process: the one that reports, also after
    :func:`teardown` left the process group."""
    return os.environ.get("RANK", "0") == "0"


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group named by torchrun's environment (no-op otherwise); the device for this rank.

    Backend: NCCL when training on CUDA (device ``cuda:LOCAL_RANK``), gloo on CPU.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        return _rank_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    device = _rank_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    return device


def _rank_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def teardown() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_rank_stream() -> None:
    """Give ranks > 0 their own torch noise stream (rank 0 keeps the single-process one)."""
    if rank() > 0:
        torch.manual_seed(torch.initial_seed() + 7919 * rank())


def all_reduce_sum(value: Tensor) -> Tensor:
    if is_distributed():
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def average(value: float) -> float:
    """The mean of a per-rank float over ranks (identity in a single process)."""
    if not is_distributed():
        return value
    return all_reduce_sum(torch.tensor([float(value)], dtype=torch.float64)).item() / world_size()


def shard(x: Tensor, index: Optional[int] = None, size: Optional[int] = None) -> Tensor:
    """This rank's part of a global minibatch: rows ``rank, rank + N, ...``."""
    index = rank() if index is None else index
    size = world_size() if size is None else size
    return x[index::size]


class DistributedEngine(TorchEngine):
    """The ``torch`` engine with the ELBO module wrapped in DistributedDataParallel.

    ``step(x, y)`` takes the *global* minibatch, keeps its shard, and returns the global summed loss
    (all-reduced, so the trainer's ELBO is the average over every rank's datapoints).
    """

    name = "ddp"

    def __init__(self, model: nn.Module, config: TrainConfig) -> None:
        super().__init__(model, config)
        device = next(model.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        # find_unused_parameters: a model may leave some parameters out of a step (e.g. a conditional prior).
        self.ddp = DistributedDataParallel(self.loss, device_ids=ids, find_unused_parameters=True)
        self.world = world_size()
        # DDP runs the module eagerly: its gradient hooks sit on the module's forward
        self.loss.eager_only("DistributedDataParallel runs the loss module eagerly")
        if rank() > 0:  # one notice per run: rank 0's
            self.loss.notify = lambda line: None
        seed_rank_stream()

    def loss_fn(self, x: Tensor, y: Optional[Tensor]) -> Tensor:
        # DDP averages gradients over ranks; × N makes them the gradient of the global summed loss.
        return self.ddp(x, y) * self.world

    def step(self, x: Tensor, y: Optional[Tensor] = None) -> float:
        return super().step(shard(x), None if y is None else shard(y))

    def report(self, loss: Tensor) -> float:
        return all_reduce_sum(loss / self.world).item()
