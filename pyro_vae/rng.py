"""Save and restore torch's global random streams (CPU, and every CUDA device once CUDA is in use)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor

TorchRNGState = Tuple[Tensor, Optional[List[Tensor]]]  # (CPU state, each CUDA device's state or None)


def torch_rng_state() -> TorchRNGState:
    """The CPU generator's state, and each CUDA device's when CUDA has been initialized (else None)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_torch_rng_state(state: TorchRNGState) -> None:
    """Restore what :func:`torch_rng_state` saved."""
    torch.set_rng_state(state[0])
    if state[1] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state[1])


@contextmanager
def traceless() -> Iterator[None]:
    """A block that leaves no trace in the global state a run depends on: every random stream (torch's CPU and
    CUDA generators, Python's, NumPy's) and Pyro's param store (the block starts with an empty one) are put back
    as they were afterwards. For probes of a model: counting its work, checking the speed layer."""
    import pyro
    import pyro.util

    streams, devices, store = pyro.util.get_rng_state(), torch_rng_state(), pyro.get_param_store()
    params = store.get_state()
    store.clear()
    try:
        yield
    finally:
        store.clear()
        store.set_state(params)
        pyro.util.set_rng_state(streams)
        set_torch_rng_state(devices)
