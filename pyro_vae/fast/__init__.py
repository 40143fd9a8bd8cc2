"""The speed layer: the same −ELBO as Pyro's own ELBO classes, computed with fewer ops.

One entry point, :func:`compile_loss` (model + guide + objective → a loss with ``loss(x, y)`` and
``describe()``). Inside: the one-pass ELBO (:mod:`.onepass`, with the sample-and-score kernels of
:mod:`.kernels`), replay of its recorded tensor ops (:mod:`.replay`) and the private Pyro/torch names they
need (:mod:`.compat`). A program the fast path cannot run falls back to Pyro's own ELBO and says so once.

Evaluation's entry point is :func:`log_weights` (:mod:`.weights`): importance log-weights by the one pass
where it fits, else by Pyro's traces, the switch said once in the same way (:mod:`.notify`).
"""

from __future__ import annotations

from ..lazy import lazy_exports

# name -> submodule, loaded on first use: importing pyro_vae.fast.compat (which the objectives build on) does
# not load the losses that build on the objectives
_EXPORTS = {"FastLoss": "loss", "compile_loss": "loss", "ImportanceWeights": "weights", "log_weights": "weights"}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
