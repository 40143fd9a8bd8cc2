"""Graceful stop on SIGINT/SIGTERM: the first signal asks the loop to stop after the current step.

Inside :func:`stop_on_signals` the handlers only set a flag; the training loop checks it after each
step, raises :class:`Interrupted`, and the caller saves a checkpoint before exiting. A second signal
while the first is being handled stops at once (``KeyboardInterrupt``), as a user pressing Ctrl-C twice
expects. Outside the main thread (where Python cannot install handlers) nothing is installed.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

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
    """Set by the signal handler, read by the loop."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Install flag-setting SIGINT/SIGTERM handlers for the duration of the block (then restore the old ones)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag:  # second signal: stop now
            raise KeyboardInterrupt
        flag.signum = signum

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
