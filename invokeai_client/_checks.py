"""Checks of plain arguments (flags, counts, durations, choices) shared by the public API.

Each returns the value when it keeps the rule, else raises
:class:`~invokeai_client.errors.ValidationError` naming the argument and the rule, so a
mistake is reported before any request is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from . import errors
from ._limits import short_repr


def check_keywords(call: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Refuse a keyword not in ``known`` (a TypedDict's keys) with the ``TypeError`` Python
    raises for an unknown keyword argument: ``**options: Unpack[...]`` is checked by a type
    checker, but at run time it would take anything."""
    for name in given:
        if name not in known:
            raise TypeError(f"{call}() got an unexpected keyword argument {name!r}")


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False`` (not a truthy string such as ``"no"``)."""
    if not isinstance(value, bool):
        raise errors.ValidationError(
            f"{name} must be True or False, got {short_repr(value)}", input=name, rule="boolean"
        )
    return value


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum`` (and at most
    ``maximum`` when one is given)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise errors.ValidationError(
            f"{name} must be an integer >= {minimum}, got {short_repr(value)}",
            input=name,
            rule=f"integer >= {minimum}",
        )
    if maximum is not None and value > maximum:
        raise errors.ValidationError(
            f"{name} must be at most {maximum}, got {value}", input=name, rule=f"<= {maximum}"
        )
    return value


def check_seconds(name: str, value: object, *, positive: bool = False) -> float | None:
    """A duration in seconds: ``None`` (no limit) or a finite number >= 0 (> 0 with
    ``positive``)."""
    if value is None:
        return None
    rule = "> 0" if positive else ">= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise errors.ValidationError(
            f"{name} must be None or a number of seconds {rule}, got {short_repr(value)}",
            input=name,
            rule=rule,
        )
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise errors.ValidationError(
            f"{name} must be one of {', '.join(map(repr, options))}, got {short_repr(value)}",
            input=name,
            rule="one of " + ", ".join(options),
        )
    return value
