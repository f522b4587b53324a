"""Reading server answers: one place where JSON of the wrong shape becomes an error.

The transport returns decoded JSON as it came. Every repository turns it into DTOs through
:func:`parse` / :func:`parse_list` (or reads it inside :func:`reading`), so an answer of
``{}``, ``[]``, ``null`` or wrong field types raises
:class:`~invokeai_client.errors.UnexpectedResponseError` naming the route, never a raw
pydantic error, ``AttributeError`` or ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import pydantic

from . import errors

__all__ = ["LAST_ROUTE", "as_object", "parse", "parse_list", "reading"]

LAST_ROUTE: ContextVar[str] = ContextVar("invokeai_client_last_route", default="answer")
"""The request (``"GET /api/v1/..."``) whose answer this task read last; set by the
transport, so the functions below name the route without being told."""

M = TypeVar("M", bound=pydantic.BaseModel)

_SHAPE_ERRORS = (pydantic.ValidationError, AttributeError, TypeError, KeyError, IndexError,
                 ValueError, RecursionError)


def _error(route: str | None, why: str) -> errors.UnexpectedResponseError:
    route = route or LAST_ROUTE.get()
    method, _, path = route.partition(" ")
    return errors.UnexpectedResponseError(
        f"{route}: InvokeAI's answer does not have the expected shape ({why})",
        method=method or None,
        path=path.split("?", 1)[0] or None,
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first.get('msg', 'invalid')}{more}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


@contextmanager
def reading(route: str | None = None) -> Iterator[None]:
    """Code inside reads the answer of ``route`` (``"GET /api/v1/..."``, default: the last
    one read); an answer of the wrong shape met there becomes
    :class:`~errors.UnexpectedResponseError` naming it."""
    try:
        yield
    except errors.InvokeAIError:
        raise
    except _SHAPE_ERRORS as exc:
        raise _error(route, _why(exc)) from None


def as_object(answer: Any, route: str | None = None) -> dict[str, Any]:
    """``answer`` if it is a JSON object, else UnexpectedResponseError naming ``route``."""
    if not isinstance(answer, dict):
        raise _error(route, f"expected a JSON object, got {type(answer).__name__}")
    return answer


def parse(model: type[M], answer: Any, route: str | None = None) -> M:
    """``answer`` (a JSON object) as ``model``; the wrong shape raises naming ``route``."""
    with reading(route):
        return model.model_validate(as_object(answer, route))


def parse_list(
    model: type[M],
    answer: Any,
    route: str | None = None,
    *,
    key: str | None = None,
    missing_ok: bool = False,
) -> list[M]:
    """A JSON array (``answer``, or its ``key``) as a list of ``model``. ``missing_ok``
    accepts ``null`` / an absent key as an empty list."""
    items = answer if key is None else as_object(answer, route).get(key)
    if items is None and missing_ok:
        return []
    if not isinstance(items, list):
        where = f"{key!r}" if key else "answer"
        raise _error(route, f"{where}: expected a JSON array, got {type(items).__name__}")
    with reading(route):
        return [model.model_validate(as_object(item, route)) for item in items]


def integer(value: Any) -> int:
    """A JSON integer of an answer (``bool`` and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def strings(answer: Any, route: str | None = None) -> list[str]:
    """A JSON array of strings (``null`` reads as empty)."""
    if answer is None:
        return []
    if not isinstance(answer, list) or not all(isinstance(s, str) for s in answer):
        raise _error(route, "expected a JSON array of strings")
    return answer


def page_offset(answer: Any, default: int, route: str | None = None) -> int:
    """The ``offset`` of a page answer (``default`` when absent)."""
    with reading(route):
        return integer(as_object(answer, route).get("offset", default))


def page_total(answer: Any, route: str | None = None) -> int | None:
    """The ``total`` of a page answer, if it gives one."""
    with reading(route):
        total = as_object(answer, route).get("total")
        return None if total is None else integer(total)
