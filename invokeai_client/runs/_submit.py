"""Submission: enqueue bodies checked and sent once, and the server's answer read.

:func:`prepare_body` parses a body with every batch rule (:mod:`invokeai_client.types.batch`);
:func:`post_enqueue` sends it. ``enqueue_batch`` is never blindly retried: a request the
server provably never got (connection refused, 429) is sent again; one whose answer was lost
is looked up by its ``batch_id`` (:mod:`~invokeai_client.runs._recovery`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.payload import BytesPayload

from .. import errors
from .._constants import DEFAULT_ORIGIN
from ..types.batch import Encoded, EnqueueBody
from ..types.queue import EnqueueBatchResult
from ._recovery import ENQUEUE_FATE_WINDOW, find_batch_items, recover_enqueue

if TYPE_CHECKING:
    from .._http import HttpTransport
    from ..repositories.queue import QueueRepository

log = logging.getLogger("invokeai_client")


__all__ = [
    "ENQUEUE_RESENDS",
    "build_body",
    "post_enqueue",
    "prepare_body",
    "read_enqueue_answer",
]

ENQUEUE_RESENDS = 2
"""How often an enqueue the server provably never recorded is sent again."""


async def post_enqueue(
    http: HttpTransport,
    queue: QueueRepository,
    batch_id: str,
    request: bytes,
    *,
    expected: int,
    known: Callable[[], list[int]],
    fate_window: float = ENQUEUE_FATE_WINDOW,
) -> EnqueueBatchResult:
    """POST ``request`` (the bytes of a prepared body, see :func:`prepare_body`) of batch
    ``batch_id``; the answer, or its REST reconstruction.

    Sent again only when the server provably never got it (connection refused, 429) or,
    for an enqueue of unknown fate, after the server said a definite no by batch id for
    ``fate_window`` seconds. ``known`` gives the item ids the socket already told.
    """
    path = f"/api/v1/queue/{queue.queue_id}/enqueue_batch"
    resends = 0
    while True:
        try:
            raw = await http.request(
                "POST", path, data=BytesPayload(request, content_type="application/json"),
                retry=False, expect="bytes",
            )
            answer = read_enqueue_answer(raw, batch_id)
            if answer.enqueued and not answer.item_ids:
                # InvokeAI before 6.0 does not name the new items: find them over REST.
                answer.item_ids = await find_batch_items(queue, batch_id, answer.enqueued, known())
            return answer
        except errors.RateLimitError as exc:
            # Refused before any work: safe to send again after the server's hint.
            if resends >= ENQUEUE_RESENDS:
                raise
            resends += 1
            await asyncio.sleep(exc.retry_after or 0.5 * 2**resends)
            continue
        except errors.ConnectionError as exc:
            if isinstance(exc.__cause__, aiohttp.ClientConnectorError):
                # The connection was never made, so the request was never sent.
                if resends >= ENQUEUE_RESENDS:
                    raise
                resends += 1
                await asyncio.sleep(0.5 * 2**resends)
                continue
            fate: errors.InvokeAIError = exc
        except (errors.TimeoutError, errors.InternalServerError) as exc:
            # A 5xx may come from a gateway that gave up while InvokeAI still writes the
            # batch: like a timeout or a reset, the enqueue's fate is unknown.
            fate = exc
        found = await recover_enqueue(
            queue, batch_id, expected=expected, known=known, cause=fate, window=fate_window
        )
        if found is not None:
            return found
        resends = _resend_after_no(batch_id, fate, resends, fate_window)


def _resend_after_no(
    batch_id: str, fate: errors.InvokeAIError, resends: int, window: float
) -> int:
    """The server said a definite no: the resend count, or the error when enough were sent."""
    if resends >= ENQUEUE_RESENDS:
        raise errors.ConnectionError(
            f"enqueue of batch {batch_id} failed ({fate}); the server has no record of it, "
            f"and it was already sent again {ENQUEUE_RESENDS} times"
        ) from fate
    log.warning("batch %s was not enqueued (%s; the server had no record of it for %.0f s); "
                "sending it again", batch_id, fate, window)
    return resends + 1


def read_enqueue_answer(raw: bytes, batch_id: str) -> EnqueueBatchResult:
    """The counts and item ids of an ``enqueue_batch`` answer.

    The server echoes the whole batch (graph, workflow, data: easily hundreds of KB for a GUI
    workflow) between the counts and the item ids, and none of it is needed: only the two
    ends are decoded. That is exact, not a guess: InvokeAI sends ``queue_id, enqueued,
    requested, batch, priority, item_ids`` in that order, a ``"batch"`` / ``"priority"``
    key inside the echo cannot make both ends valid JSON with the right keys (it sits one
    level deeper, and JSON strings cannot hold a bare quote), and any doubt (another key
    order, an odd answer) falls back to decoding the whole answer.
    """
    answer = _answer_ends(raw)
    if answer is None:
        try:
            answer = EnqueueBatchResult.model_validate(json.loads(raw))
        except ValueError as exc:
            raise errors.APIError(
                f"POST enqueue_batch: InvokeAI sent an answer that is not an enqueue result "
                f"({exc})",
                status=200,
                method="POST",
                path="enqueue_batch",
            ) from exc
    answer.batch = {"batch_id": batch_id}
    return answer


def _answer_ends(raw: bytes) -> EnqueueBatchResult | None:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    batch_at = text.find('"batch"')
    priority_at = text.rfind('"priority"')
    if batch_at < 0 or priority_at < batch_at:
        return None
    head = text[:batch_at].rstrip()
    if head.endswith(","):
        head = head[:-1]
    try:
        first = json.loads(head + "}")
        last = json.loads("{" + text[priority_at:])
    except ValueError:
        return None
    if not isinstance(first, dict) or not isinstance(last, dict) or len(last) != 2:
        return None
    enqueued, requested = first.get("enqueued"), first.get("requested")
    priority, item_ids = last.get("priority"), last.get("item_ids")
    if (
        type(enqueued) is not int
        or type(requested) is not int
        or type(priority) is not int
        or type(item_ids) is not list
        or not all(type(item_id) is int for item_id in item_ids)
    ):
        return None
    return EnqueueBatchResult(
        queue_id=str(first.get("queue_id", "default")),
        enqueued=enqueued,
        requested=requested,
        priority=priority,
        item_ids=item_ids,
    )


# -- enqueue bodies ----------------------------------------------------------------------


def build_body(
    graph: Mapping[str, Any],
    data: Sequence[Sequence[Mapping[str, Any]]] | None,
    runs: int,
    prepend: bool,
    origin: str | None,
    destination: str | None,
    workflow: Mapping[str, Any] | None,
    batch_id: str | None,
) -> dict[str, Any]:
    batch: dict[str, Any] = {"graph": graph, "runs": runs}
    if data is not None:
        batch["data"] = [[dict(datum) for datum in group] for group in data]
    if origin is not None:
        batch["origin"] = origin
    if destination is not None:
        batch["destination"] = destination
    if workflow is not None:
        batch["workflow"] = workflow
    if batch_id is not None:
        batch["batch_id"] = batch_id
    return {"batch": batch, "prepend": prepend}


def prepare_body(body: EnqueueBody | Mapping[str, Any]) -> Encoded:
    """Check an enqueue body with every rule (see :mod:`invokeai_client.types.batch`), fill
    in ``origin`` and encode it once for the POST.

    Raises :class:`~invokeai_client.errors.ValidationError` naming the bad part before
    anything is sent: InvokeAI accepts some broken batches and then stalls its whole queue
    on them.
    """
    return EnqueueBody.encode(body, origin=DEFAULT_ORIGIN)
