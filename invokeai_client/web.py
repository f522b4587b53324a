"""Runs behind a web app: stream a run's events to a browser, and cancel the run when the
browser goes away.

Framework-neutral (no web framework is imported); the same helpers serve FastAPI/Starlette
and aiohttp:

- :func:`sse_events` turns one run into Server-Sent Events text (``event:``/``data:``
  frames): every typed event as JSON, step previews as data URLs, then the result. When the
  stream ends before the run did (the browser left, the server shuts down), the run is
  canceled on the server.
- :func:`result_or_cancel` awaits a run while watching the request; if the client
  disconnects first, the run is canceled on the server and :class:`~errors.RunCanceledError`
  is raised.
- :func:`disconnect_probe` tells, for a Starlette or aiohttp request, whether its client
  has gone.

What each framework needs: Starlette (FastAPI) cancels a ``StreamingResponse``'s iterator
when the client disconnects, so :func:`sse_events` ends and cancels the run at once; a
plain endpoint keeps running after a disconnect, so await runs with
:func:`result_or_cancel`. aiohttp (by default, ``handler_cancellation=False``) notices a
gone client only when it writes, so :func:`sse_events` sends a comment frame every
``heartbeat`` seconds, and plain handlers use :func:`result_or_cancel` (or enable
``web.run_app(app, handler_cancellation=True)``: cancelling the task that awaits a run
cancels its item).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from . import errors
from .pool import ServerAssigned
from .runs import RunEvent, WorkflowResult, WorkflowRun
from .runs import events as run_events
from .runs.results import ImageRef

__all__ = ["disconnect_probe", "event_dict", "result_dict", "result_or_cancel", "sse_events"]

log = logging.getLogger("invokeai_client")

CANCEL_TIMEOUT = 10.0
"""How long ending a stream early waits for the server to confirm the cancel."""

Probe = Callable[[], Awaitable[bool]]
ImageUrl = Callable[[str], str]


def event_dict(event: RunEvent) -> dict[str, Any]:
    """A run event as JSON-ready data: ``{"type": ..., "item_id": ..., "batch_id": ...}``.

    Types: ``status`` (``status``, ``terminal``, errors), ``node_started`` (``node_id``,
    ``node_type``), ``progress`` (``percentage`` 0..1 or null, ``message``, ``step`` of
    ``total`` while a node denoises, ``preview``: a data URL when the server sent a step
    preview), ``model_load_started`` / ``model_load_completed`` (``name``, ``base``,
    ``model_type``, ``key``, ``submodel_type``), ``node_completed``, ``node_failed``,
    ``server_assigned`` (``server``, ``previous``: a pool run placed on a server)."""
    data: dict[str, Any] = {"item_id": event.item_id, "batch_id": event.batch_id}
    for kind in type(event).__mro__:
        convert = _CONVERTERS.get(kind)
        if convert is not None:
            data.update(convert(event))
            return data
    data["type"] = type(event).__name__  # pragma: no cover - a subclass of RunEvent only
    return data


def _status(event: Any) -> dict[str, Any]:
    return {"type": "status", "status": event.status, "terminal": event.terminal,
            "error_type": event.error_type, "error_message": event.error_message}


def _node_started(event: Any) -> dict[str, Any]:
    return {"type": "node_started", "node_id": event.node_id, "node_type": event.node_type}


def _progress(event: Any) -> dict[str, Any]:
    data = {"type": "progress", "node_id": event.node_id, "percentage": event.percentage,
            "message": event.message, "step": event.step, "total": event.total}
    if event.image is not None:
        data["preview"] = event.image.data_url
        data["preview_size"] = [event.image.width, event.image.height]
    return data


def _model_load(kind: str) -> Callable[[Any], dict[str, Any]]:
    def convert(event: Any) -> dict[str, Any]:
        model = event.model
        return {"type": kind, "name": event.name, "base": model.get("base"),
                "model_type": model.get("type"), "key": model.get("key"),
                "submodel_type": event.submodel_type}

    return convert


def _node_completed(event: Any) -> dict[str, Any]:
    return {"type": "node_completed", "node_id": event.node_id, "node_type": event.node_type}


def _server_assigned(event: Any) -> dict[str, Any]:
    return {"type": "server_assigned", "server": event.server, "previous": event.previous}


def _node_failed(event: Any) -> dict[str, Any]:
    return {"type": "node_failed", "node_id": event.node_id, "error_type": event.error_type,
            "error_message": event.error_message}


_CONVERTERS: dict[type[RunEvent], Callable[[Any], dict[str, Any]]] = {
    run_events.StatusChanged: _status,
    run_events.NodeStarted: _node_started,
    run_events.NodeProgress: _progress,
    run_events.ModelLoadStarted: _model_load("model_load_started"),
    run_events.ModelLoadCompleted: _model_load("model_load_completed"),
    run_events.ModelLoad: _model_load("model_load"),
    run_events.NodeCompleted: _node_completed,
    run_events.NodeFailed: _node_failed,
    ServerAssigned: _server_assigned,
}
"""How each kind of event becomes JSON (looked up along the event's class hierarchy)."""


def result_dict(result: WorkflowResult, image_url: ImageUrl | None = None) -> dict[str, Any]:
    """A result as JSON-ready data; ``image_url(name)`` makes each image's URL (else the
    image name is given)."""
    to_url = image_url or (lambda name: name)
    return {
        "type": "result",
        "item_id": result.item_id,
        "status": result.status,
        "images": [
            {"url": to_url(i.image_name), "name": i.image_name, "width": i.width,
             "height": i.height}
            for i in result.images
        ],
        "outputs": {k: _plain(v) for k, v in result.outputs.items()},
        "field_values": {k: _plain(v) for k, v in result.field_values.items()},
        "error": None if result.ok else {
            "node_id": result.error_node_id, "type": result.error_type,
            "message": result.error_message,
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, ImageRef):
        return {"image_name": value.image_name}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def sse_events(
    run: WorkflowRun,
    *,
    image_url: ImageUrl | None = None,
    heartbeat: float = 10.0,
    cancel_on_close: bool = True,
) -> AsyncIterator[str]:
    """The run as Server-Sent Events text: one frame per event (``event: <type>``), then
    ``event: result`` with :func:`result_dict`. A ``: ping`` comment goes out after
    ``heartbeat`` quiet seconds, so a server that only notices a gone client when it writes
    (aiohttp) notices. If the stream is closed or cancelled before the run ended, the run
    is canceled on the server (unless ``cancel_on_close=False``).
    """
    events = run.events()
    finished = False
    pending: asyncio.Future[RunEvent | None] | None = None
    try:
        while True:
            # One read in flight at a time, never cancelled by the heartbeat: cancelling an
            # event iterator mid-read would end it.
            pending = pending or asyncio.ensure_future(_next(events))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield ": ping\n\n"
                continue
            event, pending = pending.result(), None
            if event is None:
                break
            data = event_dict(event)
            yield _frame(data["type"], data)
        result = await run.result()  # the events ended with the run: at hand
        finished = True
        yield _frame("result", result_dict(result, image_url))
    except errors.RunError as exc:
        finished = True
        failed = run.result_nowait()
        if failed is not None:
            yield _frame("result", result_dict(failed, image_url))
        else:
            yield _frame("failure", {"type": "failure", "message": str(exc)})
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        if cancel_on_close and not finished and not run.done:
            await _cancel_shielded(run)


async def _next(events: AsyncIterator[RunEvent]) -> RunEvent | None:
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        return None


async def _cancel_shielded(run: WorkflowRun) -> None:
    """Cancel ``run`` on the server, even while the caller is being cancelled (bounded)."""
    task = asyncio.ensure_future(asyncio.wait_for(run.cancel(), CANCEL_TIMEOUT))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Our caller is cancelled: let the cancel finish in the background, then go on.
        task.add_done_callback(_quiet)
        raise
    except (asyncio.TimeoutError, errors.InvokeAIError) as exc:
        log.warning("could not cancel queue item %s after its client left: %s",
                    run.item_id, exc)


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("cancel after disconnect failed: %s", task.exception())


def disconnect_probe(request: Any) -> Probe:
    """``await probe()`` is True once ``request``'s client has gone.

    Works with Starlette/FastAPI requests (``request.is_disconnected()``) and aiohttp
    requests (the connection's transport closed); anything else with an async
    ``is_disconnected()`` works too.
    """
    is_disconnected = getattr(request, "is_disconnected", None)
    if callable(is_disconnected):

        async def starlette() -> bool:
            return bool(await is_disconnected())

        return starlette
    if hasattr(request, "transport"):

        async def aiohttp() -> bool:
            transport = request.transport
            return transport is None or transport.is_closing()

        return aiohttp
    raise errors.ValidationError(
        f"cannot tell when a {type(request).__name__} disconnects: pass a Starlette or "
        "aiohttp request, or an object with 'async is_disconnected()'",
        input="request",
        rule="Starlette or aiohttp request",
    )


async def result_or_cancel(
    run: WorkflowRun, request: Any, *, poll: float = 0.25
) -> WorkflowResult:
    """Await ``run`` while ``request``'s client stays; if it disconnects first, cancel the
    run on the server and raise :class:`~errors.RunCanceledError` (the response is moot).

    ``poll`` is how often the connection is checked, in seconds.
    """
    probe = disconnect_probe(request)
    waiter = asyncio.ensure_future(run.result())
    try:
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=poll)
            if done:
                return waiter.result()
            if await probe():
                log.info("client of queue item %s disconnected: canceling it", run.item_id)
                await _cancel_shielded(run)
                return await waiter  # raises RunCanceledError
    finally:
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(BaseException):
                await waiter
