"""Enqueue recovery: did a batch whose enqueue answer was lost reach the server?

The client chooses every ``batch_id``, so the server can be asked by it: ``GET
b/{batch_id}/status``, then the item ids (from events already routed, else by scanning the
queue's summaries). The answer rebuilds what the lost enqueue answer would have said.
Nothing here sends the enqueue again; the caller decides that from what this returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import errors
from ..types.queue import EnqueueBatchResult

if TYPE_CHECKING:
    from ..repositories.queue import QueueRepository

log = logging.getLogger("invokeai_client")

__all__ = [
    "ENQUEUE_FATE_WINDOW",
    "RECOVERY_DEADLINE",
    "SUMMARY_CHUNK",
    "item_statuses",
    "recover_enqueue",
]

ENQUEUE_FATE_WINDOW = 30.0
"""Seconds the server is asked (by batch id) about an enqueue whose fate is unknown (a 5xx,
perhaps from a gateway while InvokeAI still writes the batch, a timeout, a reset) before its
silence counts as a definite no. Items that show up within it are adopted."""
RECOVERY_DEADLINE = 120.0
"""Seconds spent at most finding out the fate of an enqueue (the server may be unreachable)."""
SUMMARY_CHUNK = 1000
"""Item ids whose summaries are read in one request."""


async def item_statuses(queue: QueueRepository, ids: list[int]) -> dict[int, tuple[str, str]]:
    """``{item_id: (status, batch_id)}`` for the ids the server still has."""
    summaries = await queue.get_summaries(ids)
    return {s.item_id: (s.status, s.batch_id) for s in summaries}


async def find_batch_items(
    queue: QueueRepository, batch_id: str, total: int, known: list[int]
) -> list[int]:
    """The item ids of a batch: ``known`` (seen in events) when complete, else by scanning
    the queue, newest first."""
    if len(known) >= total:
        return sorted(known)
    all_ids = await queue.item_ids(order="desc")
    found: list[int] = []
    for start in range(0, len(all_ids), SUMMARY_CHUNK):
        chunk = all_ids[start : start + SUMMARY_CHUNK]
        for item_id, status_and_batch in (await item_statuses(queue, chunk)).items():
            if status_and_batch[1] == batch_id:
                found.append(item_id)
        if len(found) >= total:
            break
    return sorted(found)


async def recover_enqueue(
    queue: QueueRepository,
    batch_id: str,
    *,
    expected: int,
    known: Callable[[], list[int]],
    cause: errors.InvokeAIError,
    window: float = ENQUEUE_FATE_WINDOW,
) -> EnqueueBatchResult | None:
    """Find out over REST, by the client-chosen batch id, whether an enqueue whose fate is
    unknown went through.

    Returns the reconstructed answer when its items are there; None only on a definite no
    (every answer over ``window`` seconds, at least three, said the batch has no items),
    after which sending again cannot double it. When the server cannot be asked for long
    enough, raises :class:`~errors.ConnectionError`: the batch is not sent again. ``known``
    gives the item ids already seen on the socket.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + max(RECOVERY_DEADLINE, 2 * window)
    delay = 0.25
    last_error: Exception | None = None
    noes = 0
    log.info("enqueue of batch %s has an unknown fate (%s); asking the server for up to "
             "%.0f s", batch_id, cause, window)
    while True:
        try:
            status = await queue.batch_status(batch_id)
            if status.total > 0:
                ids = await find_batch_items(queue, batch_id, status.total, known())
                return EnqueueBatchResult(
                    enqueued=status.total,
                    requested=expected,
                    item_ids=ids,
                    batch={"batch_id": batch_id},
                )
            noes += 1
            if noes >= 3 and loop.time() - started >= window:
                return None  # asked long enough, and every answer was no
        except (errors.ConnectionError, errors.TimeoutError, errors.InternalServerError,
                errors.UnexpectedResponseError) as exc:
            last_error = exc
        if loop.time() + delay > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    error = errors.ConnectionError(
        f"enqueue of batch {batch_id} has an unknown fate ({cause}) and the server "
        f"could not be asked long enough whether it has it ({last_error}); it was not "
        f"sent again. Check GET /api/v1/queue/{queue.queue_id}/b/{batch_id}/status "
        "before sending it again"
    )
    error.__cause__ = cause
    error.__suppress_context__ = True
    raise error
