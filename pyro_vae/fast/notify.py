"""How the speed layer says it is off: one line on stderr, written so that a running progress bar stays whole."""

from __future__ import annotations

import sys


def notify_stderr(line: str) -> None:
    """One line on stderr that does not break a running progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
