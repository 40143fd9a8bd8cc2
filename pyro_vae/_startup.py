"""As the ``pyro-vae`` command, SIGINT/SIGTERM outside the training loop (start-up, importing torch, loading
data, evaluating, drawing) print one line and exit at once with 128 + the signal number. Imported first by
the package; does nothing when pyro_vae is imported as a library (the CLI then raises KeyboardInterrupt).

Exiting at once, rather than raising into whatever runs, matters: an exception raised into the middle of an
import (torch, numpy) can leave half-initialized modules that fail again on the way out. Nothing is lost:
checkpoints and configs are written to a temp file and renamed, and the training loop installs its own
handlers (:mod:`pyro_vae.train.signals`) that finish the step and save before exiting.
"""

from __future__ import annotations

import os
import signal
import sys

_doing = ""  # what the command is doing ("" while starting), for the message


def started_as_command() -> bool:
    """``python -m pyro_vae`` (argv[0] is ``-m`` while the package is located) or the ``pyro-vae`` script."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) in ("pyro-vae", "pyro-vae.exe")


COMMAND = started_as_command()  # this process is the pyro-vae command: it exits when the CLI's main() returns


def _exit_now(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    message = (f"pyro-vae: {_doing}: stopped by {name}; files already written are complete (checkpoints are "
               "written atomically)" if _doing else f"pyro-vae: stopped by {name} while starting; nothing was written")
    print(message, file=sys.stderr, flush=True)
    os._exit(128 + signum)


def exit_on_signals(doing: str = "") -> None:
    """(The command only) from now on a signal prints one line naming ``doing`` and exits at once."""
    global _doing
    _doing = doing
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(s, _exit_now)
        except ValueError:  # pragma: no cover  (not the main thread)
            pass


if COMMAND:
    exit_on_signals()
