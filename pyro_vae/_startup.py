"""As the ``pyro-vae`` command, SIGINT/SIGTERM outside the training loop print one line and exit at once with
128 + the signal number (:func:`pyro_vae.train.signals.exit_on_signals`). Imported first by the package; does
nothing when pyro_vae is imported as a library (the CLI then raises KeyboardInterrupt).
"""

from __future__ import annotations

from .train.signals import COMMAND, exit_on_signals

if COMMAND:
    exit_on_signals()
