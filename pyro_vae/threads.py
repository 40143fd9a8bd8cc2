"""How many intra-op threads a step gets (``train.threads``): enough for the work, never more than the CPUs
this process may use and other programs leave free.

PyTorch's default is one thread per core, and its threads spin while they wait: a network small enough that
one step is a few milliseconds gains nothing from a second thread, and loses many times over when another
program holds that core. ``auto`` therefore gives a step one thread per :data:`WORK_PER_THREAD`
multiply-adds, n = clamp(⌈work / WORK_PER_THREAD⌉, 1, free CPUs), where the CPUs are those of
:func:`available_cpus` (affinity mask and cgroup quota) less the ones busy at the time (:func:`busy_cpus`).

A choice the user already made wins over ``auto``: ``OMP_NUM_THREADS`` in the environment, or a
``torch.set_num_threads`` call that left torch at a value other than its default. Processes the library starts
(DataLoader workers, distributed ranks, sweep runs) get :func:`child_env` / :func:`worker_init_fn`, so N
processes on N cores never run more threads than cores.

This module imports torch only when a thread count is applied (``import pyro_vae`` stays light).
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Tuple, Union

if TYPE_CHECKING:
    from .data.dataset import Dataset

WORK_PER_THREAD = 40e6  # multiply-adds per step that make one more thread pay
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
              "NUMEXPR_NUM_THREADS")
CGROUP = Path("/sys/fs/cgroup")
_torch_default: Optional[int] = None  # torch's own thread count when first seen (before anything here set it)


def available_cpus(cgroup: Path = CGROUP) -> int:
    """CPUs this process may run on: its affinity mask (``os.sched_getaffinity``), capped by a cgroup CPU quota
    (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, rounded up) when one is set; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def cgroup_quota(cgroup: Path = CGROUP) -> Optional[float]:
    """The cgroup's CPU quota in CPUs (``cpu.max`` "quota period", or v1's cfs files), None when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def _cpu_times(stat: Path) -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies summed over all CPUs, from the first line of ``/proc/stat``."""
    try:
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cpus(interval: float = 0.05, stat: Path = Path("/proc/stat")) -> float:
    """CPUs kept busy by other programs right now: the machine's non-idle share over ``interval`` seconds
    (``/proc/stat`` sampled twice) × its CPUs, less this process's own CPU time; ``os.getloadavg`` where there
    is no ``/proc/stat``."""
    first = _cpu_times(stat)
    if first is None:
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    own, start = _own_cpu_seconds(), time.monotonic()
    time.sleep(interval)
    second = _cpu_times(stat) or first
    own, elapsed = _own_cpu_seconds() - own, time.monotonic() - start
    busy, total = second[0] - first[0], second[1] - first[1]
    machine = (os.cpu_count() or 1) * busy / total if total > 0 else 0.0
    return max(0.0, machine - (own / elapsed if elapsed > 0 else 0.0))


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def choose_threads(work_per_step: float, cpus: Optional[int] = None, busy: Optional[float] = None) -> int:
    """n = clamp(⌈work_per_step / WORK_PER_THREAD⌉, 1, cpus − busy): one thread per 40M multiply-adds, never
    more than the CPUs left free (``cpus``: :func:`available_cpus`; ``busy``: :func:`busy_cpus`, sampled only
    when more than one thread would pay)."""
    cpus = available_cpus() if cpus is None else cpus
    wanted = max(1, math.ceil(work_per_step / WORK_PER_THREAD))
    if wanted == 1 or cpus == 1:
        return 1
    busy = busy_cpus() if busy is None else busy
    free = max(1, cpus - int(round(min(busy, cpus))))
    return max(1, min(wanted, cpus, free))


def torch_default() -> int:
    """Torch's thread count as first seen here (its default, or what the user set before)."""
    global _torch_default
    if _torch_default is None:
        import torch

        _torch_default = torch.get_num_threads()
    return _torch_default


def user_choice() -> Optional[Tuple[int, str]]:
    """The thread count the user chose, and how: ``OMP_NUM_THREADS`` (what torch runs with), or a
    ``torch.set_num_threads`` value that no default has (neither the CPU count nor the affinity mask's)."""
    import torch

    current = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return current, "OMP_NUM_THREADS"
    try:
        mask = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mask = os.cpu_count() or 1
    defaults = {os.cpu_count() or 1, mask, max(1, (os.cpu_count() or 2) // 2), max(1, mask // 2)}
    if torch_default() not in defaults or current != torch_default():
        return current, "torch.set_num_threads"
    return None


def resolve(setting: Union[str, int], work_per_step: float) -> Tuple[int, str]:
    """The thread count for ``setting`` (``train.threads``: ``auto`` or a positive int) and why, in words."""
    if setting != "auto":
        return int(setting), "train.threads"
    chosen = user_choice()
    if chosen is not None:
        return chosen[0], f"set by {chosen[1]}"
    cpus = available_cpus()
    more = work_per_step > WORK_PER_THREAD and cpus > 1  # only then do busy CPUs matter
    busy = busy_cpus() if more else 0.0
    n = choose_threads(work_per_step, cpus, busy)
    return n, (f"auto: {work_per_step / 1e6:.3g}M multiply-adds per step, {cpus} CPU{'s' * (cpus != 1)} available"
               + (f", {busy:.1f} busy with other programs" if more else ""))


def apply(n: int) -> int:
    """``torch.set_num_threads(n)``; returns the count it replaced."""
    import torch

    torch_default()  # (seen before anything here changes it)
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    return previous


@contextmanager
def using_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` intra-op threads, then put back the count the caller had."""
    previous = apply(n)
    try:
        yield n
    finally:
        apply(previous)


def child_env(n: int, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a process the library starts: ``base`` (default ``os.environ``) with every
    thread-pool variable (OpenMP, MKL, OpenBLAS, ...) set to ``n``."""
    env = dict(os.environ if base is None else base)
    env.update({key: str(int(n)) for key in THREAD_ENV})
    return env


def split_threads(processes: int, cpus: Optional[int] = None) -> int:
    """Threads per process when ``processes`` share the CPUs: ⌊cpus / processes⌋, at least 1."""
    cpus = available_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, processes))


def worker_init_fn(worker_id: int) -> None:
    """A DataLoader worker's start: one intra-op thread (the workers run beside the training process)."""
    import torch

    os.environ.update(child_env(1, {}))
    torch.set_num_threads(1)


def multiply_adds(model: Any, example: Any, condition: Any = None) -> float:
    """Multiply-adds of one datapoint ``example`` through ``model.reconstruct`` (encoder + decoder), counted at
    its Linear/Conv layers with forward hooks; without an example, or for a model without ``reconstruct``, the
    sizes of its Linear/Conv weights.
    The random streams, Pyro's param store and the model's train/eval mode are left as they were."""
    import torch
    from torch import nn

    from .rng import traceless

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    layers = [m for m in model.modules() if isinstance(m, kinds)]
    if example is None:
        return float(sum(m.weight.numel() for m in layers))
    total = [0.0]

    def count(module: nn.Module, inputs: tuple, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features
        elif getattr(module, "transposed", False):
            total[0] += inputs[0].numel() * module.weight[0].numel()
        else:
            total[0] += output.numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in layers]
    training = model.training
    try:
        model.eval()
        with traceless(), torch.no_grad():
            model.reconstruct(example, condition)
    except Exception:  # no reconstruct, or one that needs more than a datapoint: the weights' sizes
        total[0] = float(sum(m.weight.numel() for m in layers))
    finally:
        for h in hooks:
            h.remove()
        model.train(training)
    return total[0]


def first_datapoint(data: Optional[Dataset]) -> Optional[Tuple[Any, Any]]:
    """``(x, y)`` of the first held-out datapoint (a batch of one) of in-memory data; None for a streamed
    dataset (not read for this: its count falls back to the weights' sizes) or no dataset."""
    if data is None or not data.in_memory or data.num_test == 0:
        return None
    return data.test_x[:1], data.test_y[:1]


def training_threads(model: Any, data: Optional[Dataset], config: Any, processes: int = 1) -> Tuple[int, str]:
    """``train.threads`` resolved for a training step: work = multiply-adds per datapoint × batch size ×
    particles; with ``processes`` ranks sharing the machine (DDP on CPU) each gets its share of the CPUs."""
    setting = getattr(config, "threads", "auto")
    if setting != "auto" or user_choice() is not None:
        return resolve(setting, 0.0)
    example = first_datapoint(data)
    particles = getattr(config.objective, "num_particles", 1) or 1
    per_point = multiply_adds(model, *example) if example is not None else multiply_adds(model, None)
    work = per_point * config.batch_size * particles / processes
    n, reason = resolve(setting, work)
    return min(n, split_threads(processes)), reason


def pass_threads(setting: Union[str, int], model: Any, datapoints: int, example: Optional[Tuple[Any, Any]] = None) -> int:
    """``train.threads`` resolved for a pass of ``datapoints`` datapoints at once (evaluation, sampling): the
    multiply-adds of ``example`` (an ``(x, y)`` batch of one) through the model, or its weights' sizes."""
    if setting != "auto" or user_choice() is not None:
        return resolve(setting, 0.0)[0]
    per_point = multiply_adds(model, *example) if example is not None else multiply_adds(model, None)
    return resolve(setting, per_point * datapoints)[0]
