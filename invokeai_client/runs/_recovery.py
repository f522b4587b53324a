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

__all__ = ["RECOVERY_DEADLINE", "SUMMARY_CHUNK", "item_statuses", "recover_enqueue"]

RECOVERY_DEADLINE = 30.0
"""Seconds spent finding out whether an enqueue whose answer was lost went through."""
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
    may_resend: bool = False,
) -> EnqueueBatchResult | None:
    """Find out over REST whether batch ``batch_id`` exists; its reconstructed answer.

    None when it does not exist and ``may_resend`` (the server answered the enqueue, so
    sending again cannot double it); otherwise a batch that cannot be found raises
    :class:`~errors.ConnectionError` saying it was not sent again. ``known`` gives the item
    ids already seen on the socket.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_DEADLINE
    delay = 0.25
    last_error: Exception | None = None
    checks = 0
    first_check: float | None = None
    log.info("enqueue of batch %s lost its answer (%s); checking the server", batch_id, cause)
    while True:
        try:
            status = await queue.batch_status(batch_id)
            checks += 1
            if first_check is None:
                first_check = loop.time()
            if status.total > 0:
                ids = await find_batch_items(queue, batch_id, status.total, known())
                return EnqueueBatchResult(
                    enqueued=status.total,
                    requested=expected,
                    item_ids=ids,
                    batch={"batch_id": batch_id},
                )
            if may_resend and checks >= 2:
                return None
            if checks >= 3 and loop.time() - first_check >= 5.0:
                break  # several looks over seconds: it is not there
        except (errors.ConnectionError, errors.TimeoutError, errors.InternalServerError) as exc:
            last_error = exc
        if loop.time() + delay > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 4.0)
    raise _not_found(queue, batch_id, cause, checks, last_error)


def _not_found(
    queue: QueueRepository,
    batch_id: str,
    cause: errors.InvokeAIError,
    checks: int,
    last_error: Exception | None,
) -> errors.ConnectionError:
    if checks:
        error = errors.ConnectionError(
            f"enqueue of batch {batch_id} got no answer ({cause}); the server has no "
            f"record of it after {checks} checks, so it was not enqueued (or is still being "
            "enqueued). It was not sent again, to avoid a double submission."
        )
    else:
        error = errors.ConnectionError(
            f"enqueue of batch {batch_id} got no answer ({cause}) and the server could "
            f"not be asked whether it has it ({last_error}); check GET "
            f"/api/v1/queue/{queue.queue_id}/b/{batch_id}/status before sending it again"
        )
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error
