"""Answers shaped like InvokeAI's (FastAPI's): JSON bodies, ``{"detail": ...}`` errors, 422s."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

Detail = list[dict[str, Any]]
"""The ``detail`` list of a FastAPI 422: ``{type, loc, msg, input, ctx}`` entries."""

INDEX_HTML = b"<!doctype html><html><head><title>Invoke</title></head><body></body></html>"
"""What the web UI answers for an unknown GET (and what an ``html`` fault sends)."""


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json", **kwargs
    )


def error(status: int, detail: Any) -> web.HTTPException:
    """An HTTP error with FastAPI's ``{"detail": ...}`` body."""
    exc = web.HTTPException(text=json.dumps({"detail": detail}), content_type="application/json")
    exc.set_status(status)
    return exc


def missing(loc: list[Any], input: Any = None) -> web.HTTPException:
    """FastAPI's 422 for a required parameter or body field that was not sent."""
    return error(422, [{"type": "missing", "loc": loc, "msg": "Field required", "input": input}])


def unprocessable(detail: Detail) -> web.HTTPException:
    """A 422 with the given FastAPI error entries."""
    return error(422, detail)


def fastapi_errors(exc: ValidationError, prefix: tuple[Any, ...]) -> Detail:
    """Pydantic errors as FastAPI puts them in a 422 body (``ctx.error`` becomes ``{}``)."""
    detail: Detail = []
    for err in exc.errors(include_url=False):
        entry: dict[str, Any] = {
            "type": err["type"],
            "loc": [*prefix, *err["loc"]],
            "msg": err["msg"],
            # FastAPI reports the missing value itself (None), not the enclosing object.
            "input": None if err["type"] == "missing" else err.get("input"),
        }
        ctx = err.get("ctx")
        if ctx is not None:
            entry["ctx"] = {k: ({} if k == "error" else v) for k, v in ctx.items()}
        detail.append(entry)
    return detail


def value_error(loc: list[Any], message: str, value: Any) -> dict[str, Any]:
    """One FastAPI entry for a model validator's ``ValueError(message)``."""
    return {
        "type": "value_error",
        "loc": loc,
        "msg": f"Value error, {message}",
        "input": value,
        "ctx": {"error": {}},
    }


def parse_json(raw: bytes) -> Any:
    """A request body as FastAPI parses it: None when empty, its 422 when not JSON."""
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        message = getattr(exc, "msg", str(exc))
        raise unprocessable(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": message},
                }
            ]
        ) from None


async def json_body(request: web.Request) -> Any:
    """A request's JSON body, or a short ``json_invalid`` 422."""
    try:
        return await request.json()
    except (ValueError, json.JSONDecodeError):
        raise error(
            422, [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}]
        ) from None
