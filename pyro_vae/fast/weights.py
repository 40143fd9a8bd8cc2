"""Importance log-weights for evaluation: the speed layer's one pass where the program fits it, else Pyro's traces.

    log w_k = log p(x, z_k) − log q(z_k|x),   z_k ~ q(z|x)

:func:`log_weights` is the one entry evaluation uses. The first call tries the one pass
(:func:`~pyro_vae.fast.onepass.point_scores`: each site scored at its sample statement, K draws in one
vectorized pass inside a particle plate); a program it does not cover (enumerated sites, latents the guide
lacks such as a mixture component y, ...) is scored from Pyro's traces instead
(:func:`pyro_vae.infer.importance.log_weights`), and the switch is said once, as training says it. A failed
try is undone, random draws included, so both routes give the same numbers on the same seed.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from ..infer.importance import log_weights as traced_log_weights
from ..rng import set_torch_rng_state, torch_rng_state
from . import selfcheck
from .kernels import NO_CONSTANTS, Constants
from .loss import compile_loss
from .notify import notify_stderr
from .onepass import NotFusable, in_particle_plate, point_scores


class ImportanceWeights:
    """``(log_w, log_px_given_z)``, each ``(K, B)``, for K draws z_k ~ q(z|x) per datapoint of a batch, without
    gradients (see the module docstring); ``fused`` says which route runs (None: not tried yet)."""

    def __init__(self, model: nn.Module, one_pass: bool = True,
                 notify: Optional[Callable[[str], None]] = notify_stderr) -> None:
        self.model = model
        one_pass = one_pass and selfcheck.verdict(compile_loss) is None  # the speed layer trusted on these versions
        self.fused: Optional[bool] = None if one_pass else False
        self.constants = Constants(model).current() if one_pass else NO_CONSTANTS
        self.notify = notify or (lambda line: None)

    @torch.no_grad()
    def __call__(self, x: Tensor, y: Optional[Tensor], k: int) -> Tuple[Tensor, Tensor]:
        """``(log_w, log_px_given_z)`` for ``k`` draws per datapoint of ``x``, each of shape ``(k, B)``."""
        m = self.model
        if self.fused is not False:
            state = torch_rng_state() if self.fused is None else None
            model, guide = (in_particle_plate(f, k, m.max_plate_nesting) for f in (m.model, m.guide))
            try:
                scores = point_scores(model, guide, (x, y), {}, self.constants)
            except NotFusable as e:
                self.fused = False
                set_torch_rng_state(state)
                self.notify(f"pyro-vae: fast path off ({e}); importance weights from Pyro's traces")
            else:
                self.fused = True
                log_w, rec = torch.broadcast_tensors(scores.total, scores.reconstruction)
                return log_w.reshape(k, -1), rec.reshape(k, -1)  # (k, 1, B) under deeper plate nesting
        lw = traced_log_weights(m.model, m.guide, x, y, num_samples=k, max_plate_nesting=m.max_plate_nesting)
        return lw.total, sum(v for name, v in lw.model.items() if name not in lw.guide)


def log_weights(model: nn.Module, one_pass: bool = True,
                notify: Optional[Callable[[str], None]] = notify_stderr) -> ImportanceWeights:
    """The importance log-weights of ``model``'s program: a callable ``(x, y, k) -> (log w, log p(x|z))``, each
    ``(k, B)``, that keeps its route across calls (make one per evaluation). ``one_pass=False``: Pyro's traces
    only; ``notify`` gets the one line saying the one pass is off (None: silent)."""
    return ImportanceWeights(model, one_pass, notify)
