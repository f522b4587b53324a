"""Size and depth limits of the JSON values the SDK accepts from its caller.

Workflow documents and input values become JSON the server parses. Python itself breaks on
some legal values before the server could say no: ``repr`` and ``json`` recurse (a list nested
5,000 deep raises ``RecursionError``), ``float()`` overflows on ``10**400``, and ``str()`` of
``10**5000`` exceeds the interpreter's digit limit. :func:`json_limit_problem` finds such a
value with an iterative walk (it never recurses), so callers can refuse it with their own
error (``ValidationError`` for values, ``WorkflowError`` for documents) before anything else
touches it. :func:`encoded_limit_problem` gives the same answer for a value whose JSON text
is at hand (the request about to be sent), reading the text instead of walking the value.
"""

from __future__ import annotations

import re
import reprlib
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_NUMBER",
    "encoded_limit_problem",
    "json_limit_problem",
    "short_repr",
]

_TOO_BIG = "a number beyond ±1.8e308 (not a JSON double)"

MAX_JSON_DEPTH = 100
"""Deepest nesting of lists/objects accepted (GUI workflows nest about 10 deep)."""

MAX_NUMBER = sys.float_info.max
"""Largest magnitude of a number (about 1.8e308): beyond it a number is not a JSON double."""


def json_limit_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """What makes ``value`` exceed the limits (nesting deeper than ``max_depth``, an integer
    beyond :data:`MAX_NUMBER`), or ``None``. Other types are left to the caller's checks."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    deepest: dict[int, int] = {}  # a container shared by several paths is walked again only
    # when reached deeper, so shared structure costs at most max_depth visits per container
    while stack:
        item, depth = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if item > MAX_NUMBER or item < -MAX_NUMBER:
                return _TOO_BIG
            continue
        if not isinstance(item, (dict, list, tuple, Mapping)):
            continue
        if depth >= max_depth:
            return f"nested deeper than {max_depth} levels"
        if deepest.get(id(item), -1) >= depth:
            continue
        deepest[id(item)] = depth
        for child in item.values() if isinstance(item, Mapping) else item:
            kind = type(child)
            if kind is str or kind is float or kind is bool or child is None:
                continue  # the common leaves, skipped without a trip through the stack
            if kind is int:
                if child > MAX_NUMBER or child < -MAX_NUMBER:
                    return _TOO_BIG
                continue
            stack.append((child, depth + 1))
    return None


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789[", b"000000000{")  # and "[" as "{"
_LONGEST_FINE = b"0" * len(str(int(MAX_NUMBER)))  # 309 digits: every integer beyond has more
_SOME_DIGITS = b"0" * 16
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def encoded_limit_problem(
    encoded: bytes, value: Any, *, max_depth: int = MAX_JSON_DEPTH
) -> str | None:
    """:func:`json_limit_problem` of ``value``, whose ``json.dumps`` text is ``encoded``
    (UTF-8), read from the text where it can be: a pass over bytes in C instead of a walk of
    the value in Python. Where the text leaves a doubt (a run of 309 digits, which may be a
    number beyond the limit or just a string of digits; nesting past ``max_depth``) the
    answer is the walk's, so it is always exactly :func:`json_limit_problem`'s."""
    read = encoded.translate(_DIGITS_AS_ZERO)
    if _SOME_DIGITS in read and _LONGEST_FINE in read:  # the short search first: cheaper
        return json_limit_problem(value, max_depth=max_depth)
    if read.count(b"{") <= max_depth:
        return None  # cannot nest deeper than it opens containers
    skeleton = _NOT_BRACKET.sub(b"", _STRING.sub(b"", encoded))
    for _ in range(max_depth):  # each pass removes the innermost level of containers
        skeleton = _INNERMOST.sub(b"", skeleton)
        if not skeleton:
            return None
    return json_limit_problem(value, max_depth=max_depth)


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:  # repr() of 10**5000 raises; its size says enough
            return f"<an integer of about 2**{x.bit_length()}>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxlevel = 3
_SHORT.maxstring = 60
_SHORT.maxother = 60


def short_repr(value: Any) -> str:
    """``repr(value)`` for a message: at most a few levels and about 60 characters of each
    part, safe for values nested thousands deep and integers of thousands of digits."""
    return _SHORT.repr(value)
