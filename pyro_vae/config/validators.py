"""Checks for :func:`~pyro_vae.config.schema.opt`: one predicate per rule, each named for what it accepts.

:func:`~pyro_vae.config.schema.from_dict` converts a value to the field's type first and skips ``None``,
so a check sees an ``int``/``float`` (never a ``bool``) for a number field; the checks test the type again
all the same, so a config built in Python with a wrong value fails them too.
"""

from __future__ import annotations

from typing import Any, Callable


def is_number(x: Any) -> bool:
    """An ``int`` or ``float`` (not a ``bool``)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def positive(x: Any) -> bool:
    """x > 0."""
    return is_number(x) and x > 0


def non_negative(x: Any) -> bool:
    """x ≥ 0."""
    return is_number(x) and x >= 0


def fraction(x: Any) -> bool:
    """0 < x < 1."""
    return is_number(x) and 0.0 < x < 1.0


def fraction_or_one(x: Any) -> bool:
    """0 < x ≤ 1 (a decay factor, a share that may be all)."""
    return is_number(x) and 0.0 < x <= 1.0


def all_positive(xs: Any) -> bool:
    """Every entry > 0 (layer widths, channel counts)."""
    return xs is not None and all(positive(x) for x in xs)


def at_least(low: int) -> Callable[[Any], bool]:
    """The check x ≥ ``low``."""
    return lambda x: is_number(x) and x >= low


def one_of(*allowed: Any) -> Callable[[Any], bool]:
    """The check x ∈ ``allowed``."""
    return lambda x: is_number(x) and x in allowed
