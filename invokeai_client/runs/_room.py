"""No silent truncation: a batch the server's queue cannot hold is refused, never cut.

InvokeAI makes at most ``max_queue_size`` minus its pending items of a batch and drops the
rest without an error (``enqueued < requested``). The client therefore

- before a sweep is enqueued, compares its size with the queue's free room (the limit from
  ``/api/v1/app/runtime_config``, read once per client; the pending count from the queue
  status) and raises :class:`~invokeai_client.errors.QueueFullError` before anything is sent;
- when a server cuts a batch anyway (another client filled the queue meanwhile, or the limit
  could not be read), cancels the items it did make and raises the same error.

To run a sweep larger than a queue holds, use :class:`~invokeai_client.ServerPool` (also with
one server): it enqueues in parts as the queue drains.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:
    from .._context import ClientContext
    from .._http import HttpTransport

log = logging.getLogger("invokeai_client")

_LIMITS: weakref.WeakKeyDictionary[HttpTransport, int | None] = weakref.WeakKeyDictionary()

ADVICE = (
    "run it through ServerPool([url]) (or `invokeai-client batch`), which enqueues in parts "
    "as the queue drains, or split it"
)


async def queue_limit(context: ClientContext) -> int | None:
    """The server's ``max_queue_size`` (None when it does not tell, e.g. to a non-admin user
    of a multi-user server); read once per client."""
    if context.http in _LIMITS:
        return _LIMITS[context.http]
    try:
        answer = await context.http.request("GET", "/api/v1/app/runtime_config")
    except errors.InvokeAIError as exc:
        log.debug("%s: queue limit unknown (%s)", context.base_url, exc)
        answer = None
    config = answer.get("config") if isinstance(answer, dict) else None
    value = config.get("max_queue_size") if isinstance(config, dict) else None
    limit = value if isinstance(value, int) and value > 0 else None
    _LIMITS[context.http] = limit
    return limit


async def check_room(context: ClientContext, items: int) -> None:
    """Raise :class:`QueueFullError` when ``items`` new items do not fit the queue now."""
    if items <= 1:
        return  # a single item the server refuses is reported as such by enqueue
    limit = await queue_limit(context)
    if limit is None:
        return
    status = await context.http.request("GET", f"{context.queue_path}/status")
    counts = status.get("queue") if isinstance(status, dict) else None
    pending = counts.get("pending") if isinstance(counts, dict) else None
    if not isinstance(pending, int):
        return  # an odd answer: the enqueue answer still tells a cut
    room = max(limit - pending, 0)
    if items > room:
        raise errors.QueueFullError(
            f"this batch makes {items:,} items but the server's queue has room for {room:,} "
            f"(max_queue_size {limit:,}, {pending:,} pending); nothing was enqueued: {ADVICE}",
            requested=items,
            room=room,
        )


def cut_error(
    batch_id: str, requested: int, enqueued: int, canceled: bool
) -> errors.QueueFullError:
    """The error for a batch the server cut to ``enqueued`` of ``requested`` items."""
    fate = "they were canceled" if canceled else "canceling them failed: cancel batch " + batch_id
    return errors.QueueFullError(
        f"the server's queue was full: it made only {enqueued:,} of the {requested:,} items of "
        f"batch {batch_id} ({fate}); {ADVICE}",
        requested=requested,
        room=enqueued,
    )
