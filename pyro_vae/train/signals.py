"""Graceful stop on SIGINT/SIGTERM: the first signal asks the loop to stop after the current step.

Inside :func:`stop_on_signals` the handlers only set a flag; the training loop checks it after each
step (and after each epoch's evaluation), raises :class:`Interrupted`, and the caller saves a
checkpoint before exiting. Further signals are *held*: they are counted and acknowledged, never
raised, so the save that the first signal started always completes (the CLI then exits 128 + the
first signal's number). The block is re-entrant: a nested :func:`stop_on_signals` (the trainer's
inside the run's) shares the outer flag. Outside the main thread (where Python cannot install
handlers) nothing is installed.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from .. import _startup
from ..errors import TrainingError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(TrainingError):
    """Training stopped on a signal; ``signum`` is the signal, the message says where and what was saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell convention for death by signal: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class StopFlag:
    """Set by the signal handler, read by the loop; ``held`` counts the signals that came after the first."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.held = 0

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


_active: Optional[StopFlag] = None  # the flag of the outermost stop_on_signals block, while one is open



@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Install flag-setting SIGINT/SIGTERM handlers for the duration of the block (then restore the old ones)."""
    global _active
    if _active is not None:  # nested: the outer block's handlers and flag stay in charge
        yield _active
        return
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag:  # a further signal: held until the save the first one started is done
            flag.held += 1
            if flag.held == 1:
                print(f"pyro-vae: {signal.Signals(signum).name} received again: finishing the step and saving the "
                      "checkpoint first (SIGKILL stops at once, losing the unsaved steps)", file=sys.stderr)
            return
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    _active = flag
    try:
        yield flag
    finally:
        _active = None
        # As the pyro-vae command, once a stop began the holding handlers stay: the process only saves,
        # reports and exits from here (no window for a late signal to cut the report or kill the process)
        if not (flag and _startup.COMMAND):
            for s, h in previous.items():
                signal.signal(s, h)
