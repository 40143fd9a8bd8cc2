"""Memory estimates checked before allocating: refuse with a number instead of crashing or swapping.

Every estimate lives here: the model's training state (16 bytes a parameter), one training step
(:func:`step_bytes`, checked by :mod:`pyro_vae.train.budget`), the samples and grid of ``sample -n``
(:func:`sample_bytes`) and the largest file read whole (:func:`file_limit`).
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence

from .errors import ConfigError, ResourceError

MEMORY_LIMIT = 2 << 30  # bytes: outputs (``sample -n``) beyond this are refused (PYRO_VAE_MEMORY_LIMIT overrides)


def physical_memory() -> Optional[int]:
    """Bytes of RAM on this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover  (no sysconf)
        return None


def memory_limit() -> int:
    """``PYRO_VAE_MEMORY_LIMIT`` (bytes) if set, else the smaller of 2 GiB and a quarter of the RAM."""
    if os.environ.get("PYRO_VAE_MEMORY_LIMIT", "").isdigit():
        return int(os.environ["PYRO_VAE_MEMORY_LIMIT"])
    ram = physical_memory()
    return MEMORY_LIMIT if ram is None else min(MEMORY_LIMIT, ram // 4)


def file_limit() -> int:
    """The largest file read whole (a checkpoint): ``PYRO_VAE_MEMORY_LIMIT`` if set, else half the RAM."""
    if os.environ.get("PYRO_VAE_MEMORY_LIMIT", "").isdigit():
        return int(os.environ["PYRO_VAE_MEMORY_LIMIT"])
    ram = physical_memory()
    return 8 << 30 if ram is None else ram // 2


def check_memory(need: float, what: str, fix: str, purpose: str = "", limit: Optional[int] = None) -> None:
    """Refuse (a one-line :class:`~pyro_vae.errors.ResourceError` naming ``what``, ``purpose`` and the ``fix``)
    a request estimated to need ``need`` bytes when that exceeds ``limit`` (default :func:`memory_limit`)."""
    limit = memory_limit() if limit is None else limit
    if need > limit:
        raise ResourceError(f"{what}: needs about {size(need)} of memory{' for ' + purpose if purpose else ''} "
                            f"(limit {size(limit)}, PYRO_VAE_MEMORY_LIMIT); {fix}")


def step_bytes(points: int, particles: int, dim: int, units: int, components: int = 0, latent: int = 0) -> int:
    """One training step on ``points`` datapoints × ``particles``: 4 bytes · (4·D + 2·W + 3·K·L) each (decoder
    output, likelihood terms and their gradients for D data values; W network units; K mixture components of an
    L-dimensional latent)."""
    return points * particles * 4 * (4 * dim + 2 * units + 3 * components * latent)


def sample_bytes(num: int, shape: Sequence[int]) -> int:
    """``num`` float32 samples of ``shape`` and, for images ``(C, H, W)``, their RGB grid and its PNG copy
    (small images upscaled to ``plots.MIN_SIDE``, plus the grid's 2-pixel padding)."""
    from .plots import MIN_SIDE

    side = max(MIN_SIDE, shape[-1]) + 2 if len(shape) == 3 else 0
    return num * 4 * (math.prod(shape) + 2 * 3 * side * side)


TRAINING_BYTES_PER_PARAMETER = 16  # weights, gradients and Adam's two moments, float32


def check_parameters(params: int) -> None:
    """A ConfigError when training ``params`` parameters (16 bytes each) needs over half this machine's RAM."""
    ram = physical_memory()
    need = TRAINING_BYTES_PER_PARAMETER * params
    if ram is not None and need > ram // 2:
        raise ConfigError(f"model: {params:.3g} parameters need about {size(need)} to train (weights, "
                          f"gradients, Adam moments), over half this machine's {size(ram)}; reduce model.network "
                          "sizes (hidden_dims, channels, hidden_dim) or model.latent_dim")


def parameter_bound(tree: Any, data_dim: int) -> int:
    """A lower bound on a model's parameter count from its config alone (``tree``: the config as a dict): each
    list of sizes (widths, channels) connects consecutive layers and the input, Σ wᵢwᵢ₊₁ + max(w)·D; each
    single size n adds n."""
    if isinstance(tree, dict):
        return sum(parameter_bound(v, data_dim) for v in tree.values())
    sizes = [v for v in tree if isinstance(v, int) and not isinstance(v, bool)] if isinstance(tree, list) else []
    if sizes and len(sizes) == len(tree):
        return sum(a * b for a, b in zip(sizes, sizes[1:])) + max(sizes) * data_dim
    return max(tree, 0) if isinstance(tree, int) and not isinstance(tree, bool) else 0


def size(num_bytes: float) -> str:
    """``1.5e9`` -> ``'1.5 GB'``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes < 1000:
            return f"{num_bytes:.3g} {unit}"
        num_bytes /= 1000
    return f"{num_bytes:.3g} PB"
