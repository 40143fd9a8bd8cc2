"""All of pyro-vae's signal handling: a graceful stop of training, and the command's signals outside it.

Graceful stop on SIGINT/SIGTERM: the first signal asks the loop to stop after the current step.

Inside :func:`stop_on_signals` the handlers only set a flag; the training loop checks it after each
step (and after each epoch's evaluation), raises :class:`Interrupted`, and the caller saves a
checkpoint before exiting. Further signals are *held*: they are counted and acknowledged, never
raised, so the save that the first signal started always completes (the CLI then exits 128 + the
first signal's number). The block is re-entrant: a nested :func:`stop_on_signals` (the trainer's
inside the run's) shares the outer flag. Outside the main thread (where Python cannot install
handlers) nothing is installed.

Outside the training loop (start-up, importing torch, loading data, evaluating, drawing), as the ``pyro-vae``
command a signal prints one line and exits at once with 128 + the signal number (:func:`exit_on_signals`,
installed first thing by :mod:`pyro_vae._startup`); in-process, :func:`interrupts_raise` makes SIGTERM raise
KeyboardInterrupt like SIGINT. Exiting at once, rather than raising into whatever runs, matters: an exception
raised into the middle of an import (torch, numpy) can leave half-initialized modules that fail again on the
way out. Nothing is lost: checkpoints and configs are written to a temp file and renamed.

This module imports neither torch nor anything that does (the command's start-up installs it first).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional

from ..errors import TrainingError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def started_as_command() -> bool:
    """``python -m pyro_vae`` (argv[0] is ``-m`` while the package is located) or the ``pyro-vae`` script."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) in ("pyro-vae", "pyro-vae.exe")


COMMAND = started_as_command()  # this process is the pyro-vae command: it exits when the CLI's main() returns


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
        if not (flag and COMMAND):
            for s, h in previous.items():
                signal.signal(s, h)


# --- the command outside the training loop ---------------------------------------------------------------
_doing = ""  # what the command is doing ("" while starting), for the message
_received: List[int] = []  # in-process: the signal that raised KeyboardInterrupt (SIGINT or SIGTERM)


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
    for s in SIGNALS:
        try:
            signal.signal(s, _exit_now)
        except ValueError:  # pragma: no cover  (not the main thread)
            pass


@contextmanager
def handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM during the block, the previous handlers after it (outside the main
    thread, where Python installs none, nothing)."""
    try:
        previous = {s: signal.signal(s, handler) for s in SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _raise_interrupt(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


@contextmanager
def interrupts_raise(command: str) -> Iterator[None]:
    """Outside the training loop (which holds signals for a clean save): in-process, SIGTERM like SIGINT raises
    KeyboardInterrupt; as the pyro-vae command, a signal prints one line and exits at once
    (:func:`exit_on_signals`), and from the end of the block on signals are ignored: the process is exiting,
    its status is decided, and a late signal must neither print a traceback nor kill it by the signal."""
    _received.clear()
    if COMMAND:
        exit_on_signals(command)
        try:
            yield
        finally:
            for s in SIGNALS:
                signal.signal(s, signal.SIG_IGN)
        return
    with handling(_raise_interrupt):
        yield


def interrupted_signal() -> int:
    """The signal that raised the last KeyboardInterrupt inside :func:`interrupts_raise` (SIGINT by default)."""
    return _received[-1] if _received else int(signal.SIGINT)


def interrupted_message(command: str) -> str:
    """The one line for a signal outside the training loop (start-up, loading, evaluation, pictures)."""
    return (f"pyro-vae: {command}: stopped by {signal.Signals(interrupted_signal()).name}; files already written "
            "are complete (every checkpoint is written atomically)")
