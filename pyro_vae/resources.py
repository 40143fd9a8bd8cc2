"""Memory estimates checked before allocating: refuse with a number instead of crashing or swapping."""

from __future__ import annotations

import os
from typing import Optional

from .errors import ResourceError

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


def size(num_bytes: float) -> str:
    """``1.5e9`` -> ``'1.5 GB'``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes < 1000:
            return f"{num_bytes:.3g} {unit}"
        num_bytes /= 1000
    return f"{num_bytes:.3g} PB"
