"""The speed layer: the same −ELBO as Pyro's own ELBO classes, computed with fewer ops.

One entry point, :func:`compile_loss` (model + guide + objective → a loss with ``loss(x, y)`` and
``describe()``). Inside: the one-pass ELBO (:mod:`.onepass`, with the sample-and-score kernels of
:mod:`.kernels`), replay of its recorded tensor ops (:mod:`.replay`) and the private Pyro/torch names they
need (:mod:`.compat`). A program the fast path cannot run falls back to Pyro's own ELBO and says so once.
"""

from .loss import FastLoss, compile_loss

__all__ = ["FastLoss", "compile_loss"]
