"""JSON helpers of the enqueue body: pre-rendered JSON, a value's JSON type, copies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class JSONText:
    """A JSON value already serialised (``json.dumps`` with its default separators), sent as
    it is: the workflow attached to a batch is rendered once from a per-workflow template
    instead of being copied and encoded for every enqueue."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        """The value, decoded (a fresh object)."""
        return json.loads(self.text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JSONText):
            return self.text == other.text
        return bool(self.value() == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JSONText({self.text[:60]!r}{'...' if len(self.text) > 60 else ''})"


def json_kind(value: Any) -> str:
    """The JSON type of a value: ``null``, ``boolean``, ``number``, ``string``, ``object``,
    ``array`` (else the Python type's name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def json_copy(value: Any) -> Any:
    """``value`` with its dicts and lists copied all the way down (what else it holds is
    kept: scalars, models, pre-rendered JSON): a body parsed from a caller's dict shares no
    container with it, so changing the dict later changes neither the body nor what it sends.
    Called after the size check (the nesting is bounded)."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    if kind is tuple:
        return tuple(json_copy(item) for item in value)
    if isinstance(value, Mapping):
        return {key: json_copy(item) for key, item in value.items()}
    return value


_IMMUTABLE = frozenset((str, int, float, bool, type(None)))
