"""The runs machinery of one client: the batches in flight and the parts that act on them.

:class:`RunHub` owns the registry of :class:`~invokeai_client.runs._tracker.BatchTracker` s
and wires the parts that each live in their own module: submission
(:mod:`~invokeai_client.runs._submit`, with recovery), the REST reconciler
(:mod:`~invokeai_client.runs._reconcile`), cancellation (:mod:`~invokeai_client.runs._cancel`)
and the limiter (:mod:`~invokeai_client.runs._limiter`). It is what every batch asks for I/O
(:class:`~invokeai_client.runs._tracker.BatchOwner`). The public face is
:class:`~invokeai_client.runs.RunManager`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from ..types.queue import EnqueueBatchResult
from ._cancel import Canceller
from ._limiter import Limiter
from ._reconcile import Reconciler
from ._recovery import ENQUEUE_FATE_WINDOW
from ._room import cut_error
from ._state import TERMINAL, ItemState
from ._submit import post_enqueue, prepare_body
from ._tasks import TaskSet
from ._tracker import BatchTracker
from .results import ImageHost, iterated_nodes

if TYPE_CHECKING:
    from .._context import ClientContext
    from ..repositories.queue import QueueRepository
    from ..types.batch import EnqueueBody

log = logging.getLogger("invokeai_client")

_NO_NODES: frozenset[str] = frozenset()

__all__ = ["CLOSE_TIMEOUT", "RETRY_SEARCH", "RunHub"]

CLOSE_TIMEOUT = 10.0
"""Seconds closing the client waits for pending cancels and background work."""
RETRY_SEARCH = 20
"""Newest queue items searched for the new item of a retry (the server does not name it)."""


class RunHub:
    """The batches in flight of one client and the parts acting on them (module doc)."""

    def __init__(
        self,
        context: ClientContext,
        queue: QueueRepository,
        *,
        image_host: ImageHost | None,
        limiter: Limiter | None,
    ) -> None:
        self.context = context
        self.queue = queue
        self.router = context.router
        self.image_host = image_host
        self.batches: dict[str, BatchTracker] = {}
        self.limiter = limiter
        self.tasks = TaskSet()
        self.posts: set[asyncio.Future[Any]] = set()
        self.reconciler = Reconciler(
            queue, self.batches, lambda: context.connected, where=context.base_url
        )
        self.enqueue_fate_window = ENQUEUE_FATE_WINDOW
        self.canceller = Canceller(queue, self.reconciler.check_soon, self.tasks)
        self.closed = False
        self.router.on_wake(self.reconciler.on_disconnect)
        self.router.on_queue_cleared(self.reconciler.on_queue_cleared)
        context.stream.on_reconnect(self.reconciler.on_reconnect)

    @property
    def in_flight(self) -> int:
        return sum(batch.expected - len(batch.finished) for batch in self.batches.values())

    def check_open(self) -> None:
        if self.closed:
            raise errors.InvokeAIError("the client is closed; runs cannot be submitted")
        if not self.context.http.is_open:
            raise errors.InvokeAIError(
                "the client is not open: use 'async with AsyncClient(...)' or "
                "'await client.open()'"
            )

    def _tracker(
        self, batch_id: str, *, expected: int, detach: bool, graph: Mapping[str, Any] | None,
        groups: list[list[dict[str, Any]]] | None = None,
        origin: str | None = None, destination: str | None = None,
    ) -> BatchTracker:
        nodes = (graph or {}).get("nodes") or {}
        types = _node_types(nodes)
        # Only a graph with an iterate node has iterated nodes (its types tell, in C).
        iterated = (
            iterated_nodes(graph) if types is None or "iterate" in types.values() else _NO_NODES
        )
        return BatchTracker(
            self, self.router, batch_id, expected=expected, origin=origin,
            destination=destination, detached=detach, gap=not self.context.connected,
            node_count=len(nodes), iterated=iterated, groups=groups,
            image_host=self.image_host, node_types=types,
        )

    # -- BatchOwner ----------------------------------------------------------------------

    def check_soon(self, state: ItemState) -> None:
        self.reconciler.check_soon(state)

    def stranger(self, batch: BatchTracker, item_id: int) -> None:
        if not self.closed:
            self.tasks.spawn(self._end_copy(batch, item_id))

    async def _end_copy(self, batch: BatchTracker, item_id: int) -> None:
        """A copy of ``batch`` (same id, not a retry: a gateway sent the enqueue twice) is
        canceled unless it ended already, and noted in ``batch.copies``."""
        try:
            item = await self.queue.get(item_id)
            if item.batch_id != batch.batch_id or item.retried_from_item_id is not None:
                return
            if item.status not in TERMINAL:
                item = await self.queue.cancel(item_id)
        except errors.InvokeAIError as exc:
            log.debug("could not check queue item %s of batch %s: %s", item_id,
                      batch.batch_id, exc)
            return
        log.log(
            logging.WARNING if batch.note_copy(item_id) == 1 else logging.DEBUG,
            "batch %s: queue item %s is a copy the client did not ask for (a proxy or gateway "
            "sent the enqueue twice?): %s", batch.batch_id, item_id,
            "canceled" if item.status == "canceled" else f"it was {item.status} already",
        )

    def item_settled(self, batch: BatchTracker) -> None:
        if self.limiter is not None and batch.held:
            keep = min(batch.held, batch.expected - len(batch.finished))
            if keep < batch.held:
                self.limiter.release(batch.held - keep)
                batch.held = keep

    def batch_done(self, batch: BatchTracker) -> None:
        self.drop(batch)

    async def cancel_item(self, state: ItemState) -> str:
        return await self.canceller.cancel_item(state)

    async def cancel_item_shielded(self, state: ItemState) -> tuple[bool, str]:
        return await self.canceller.cancel_item_shielded(state)

    async def cancel_batch(self, batch: BatchTracker) -> int:
        return await self.canceller.cancel_batch(batch)

    async def cancel_batch_shielded(self, batch: BatchTracker) -> tuple[bool, str]:
        return await self.canceller.cancel_batch_shielded(batch)

    def drop(self, batch: BatchTracker) -> None:
        """Stop tracking ``batch`` (done, or never enqueued) and give its slots back."""
        if self.limiter is not None and batch.held:
            self.limiter.release(batch.held)
            batch.held = 0
        if self.batches.get(batch.key) is batch:
            del self.batches[batch.key]
        self.router.remove_batch(batch.batch_id, batch)
        for item_id, state in batch.states.items():
            self.router.remove_item(item_id, state)

    # -- submitting ----------------------------------------------------------------------

    async def enqueue(
        self,
        body: EnqueueBody | Mapping[str, Any],
        *,
        detach: bool,
        single: bool = False,
        partial: bool = False,
        names: Mapping[str, str] | None = None,
    ) -> BatchTracker:
        """Submit an enqueue body; returns its batch once the server has the items (see
        :meth:`RunManager.enqueue` for ``partial`` and ``names``)."""
        self.check_open()
        encoded = prepare_body(body)
        expected = encoded.item_count
        if single and expected != 1:
            raise errors.ValidationError(
                f"submit() makes exactly one queue item, but this batch makes {expected}; "
                "use submit_batch() for sweeps and runs > 1",
                input="data",
                rule="exactly one item",
            )
        sent = encoded.batch
        batch = self._tracker(
            sent["batch_id"], expected=expected, detach=detach,
            graph=sent["graph"], groups=sent.get("data"),
            origin=sent.get("origin"), destination=sent.get("destination"),
        )
        if names:
            batch.names = dict(names)
        if batch.batch_id in self.batches:
            raise errors.ValidationError(
                f"batch_id {batch.batch_id!r} is already in flight on this client",
                input="batch_id",
                rule="unique per submission",
            )
        await self._register(batch)
        answer = await self._post(batch, encoded.body)
        if self.closed:
            outcome = "it was left on the server"
            if not detach:  # nothing else will cancel it: the close has passed its cancels
                batch.confirm(answer)
                _, outcome = await self.canceller.cancel_batch_shielded(batch)
            self.drop(batch)
            raise errors.InvokeAIError(
                f"the client closed while batch {batch.batch_id} was being submitted; {outcome}"
            )
        if answer.enqueued == 0 or (answer.enqueued < answer.requested and not partial):
            raise await self._cut(batch, answer)
        batch.confirm(answer)
        return batch

    async def _cut(self, batch: BatchTracker, answer: EnqueueBatchResult) -> errors.QueueFullError:
        """The server's queue cut the batch: cancel what it made, never run part silently."""
        canceled = True
        if answer.enqueued or answer.item_ids:
            batch.confirm(answer)
            try:
                await self.queue.cancel_batch(batch.batch_id)
            except errors.InvokeAIError as exc:
                log.warning("could not cancel the cut batch %s: %s", batch.batch_id, exc)
                canceled = False
        self.drop(batch)
        return cut_error(batch.batch_id, answer.requested, answer.enqueued, canceled)

    async def _register(self, batch: BatchTracker) -> None:
        """Take limiter slots, then route the batch's events (before the POST: events may
        overtake the answer)."""
        if self.limiter is not None:
            batch.held = await self.limiter.acquire(batch.expected)
            if self.closed:
                self.limiter.release(batch.held)
                raise errors.InvokeAIError("the client is closed; runs cannot be submitted")
        self.batches[batch.key] = batch
        self.router.add_batch(batch.batch_id, batch)
        self.reconciler.start()

    async def _post(self, batch: BatchTracker, request: bytes) -> EnqueueBatchResult:
        # The POST runs in a task of its own so that cancelling the caller never cuts a
        # request whose fate would then be unknown; the caller waits on a plain future.
        loop = asyncio.get_running_loop()
        post = loop.create_task(
            post_enqueue(
                self.context.http, self.queue, batch.batch_id, request, expected=batch.expected,
                known=lambda: list(batch.states), fate_window=self.enqueue_fate_window,
            )
        )
        self.posts.add(post)
        posted = loop.create_future()

        def landed(task: asyncio.Task[Any]) -> None:
            self.posts.discard(task)
            if not posted.done():
                posted.set_result(None)

        post.add_done_callback(landed)
        try:
            await posted
        except asyncio.CancelledError:
            # The request may still land: finish it in the background, then cancel it.
            self.tasks.spawn(self._cancel_when_enqueued(post, batch))
            raise
        try:
            return post.result()
        except BaseException:
            self.drop(batch)
            raise

    async def _cancel_when_enqueued(
        self, post: asyncio.Future[EnqueueBatchResult], batch: BatchTracker
    ) -> None:
        try:
            answer = await post
        except Exception:
            self.drop(batch)
            return
        batch.confirm(answer)
        if not batch.detached:
            await self.canceller.cancel_batch_quietly(batch)

    # -- existing items ------------------------------------------------------------------

    async def attach(self, item_id: int, *, detach: bool) -> tuple[BatchTracker, int]:
        """Follow an existing queue item; its batch and id."""
        self.check_open()
        for batch in self.batches.values():
            if batch.has_item(item_id):
                return batch, item_id
        item = await self.queue.get(item_id)
        groups = [
            [{"node_path": fv.node_path, "field_name": fv.field_name, "items": [fv.value]}]
            for fv in item.field_values or ()
        ]
        batch = self._tracker(
            item.batch_id, expected=1, detach=detach, graph=item.session.get("graph"),
            groups=groups or None, origin=item.origin, destination=item.destination,
        )
        batch.key = f"{item.batch_id}#{item_id}"
        self.batches[batch.key] = batch
        batch.confirm(EnqueueBatchResult(enqueued=1, requested=1, item_ids=[item_id]))
        state = batch.state(item_id)
        state.apply_item(item)
        if state.result is None:
            self.reconciler.start()
        return batch, item_id

    async def retry_item(self, item_id: int, *, detach: bool) -> tuple[BatchTracker, int]:
        """Run a failed or canceled item again and follow the new item.

        InvokeAI's retry enqueues a NEW item (same batch, graph and values) and does not
        say which; it is found as the newest retried item of that batch.
        """
        self.check_open()
        queue = self.queue
        answer = await queue.retry(item_id)
        if not answer.retried_item_ids:
            item = await queue.get(item_id)
            raise errors.ValidationError(
                f"queue item {item_id} is {item.status}: only failed or canceled items can be "
                "retried (or the queue is full)",
                input="run",
                rule="failed or canceled",
            )
        # The new item names the first item of its retry chain, not this one; it is the
        # newest retried item of this batch.
        batch_id = (await queue.get(answer.retried_item_ids[0])).batch_id
        newer = [i for i in await queue.item_ids(order="desc") if i > item_id]
        retried = [
            item.item_id
            for item in await queue.get_many(newer[:RETRY_SEARCH])
            if item.batch_id == batch_id and item.retried_from_item_id is not None
        ]
        if not retried:
            raise errors.InvokeAIError(
                f"the server retried queue item {item_id} but its new item was not found among "
                f"the {RETRY_SEARCH} newest"
            )
        return await self.attach(max(retried), detach=detach)

    # -- closing -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Settle every run: cancel the server items of runs that are not detached (in bulk,
        bounded in time), end every unfinished run locally, stop all background work."""
        self.closed = True
        if self.limiter is not None:
            self.limiter.close()
        await self.reconciler.stop()
        if self.posts:
            # Let enqueues in flight land first, so that the cancel below can reach them.
            await asyncio.wait(list(self.posts), timeout=CLOSE_TIMEOUT)
        batches = list(self.batches.values())
        cancel_sent = await self._cancel_at_close(batches)
        for batch in batches:
            for state in batch.unsettled():
                if batch.detached:
                    state.end_locally("detached", "the client closed; the item was left running")
                else:
                    state.end_locally(
                        "canceled",
                        "the client closed; the item was canceled on the server"
                        if cancel_sent else "the client closed; canceling the item failed",
                    )
            if not batch.confirmed:
                self.drop(batch)
        await self.tasks.finish(CLOSE_TIMEOUT, *self.posts)
        await self.reconciler.stop()

    async def _cancel_at_close(self, batches: list[BatchTracker]) -> bool:
        """Cancel what is ours and not detached; whether the bulk cancel was sent."""
        if not self.context.http.is_open:
            return False
        to_cancel = [
            b.batch_id for b in batches if not b.detached and not b.done and b.key == b.batch_id
        ]
        attached = [
            state for b in batches if not b.detached and b.key != b.batch_id
            for state in b.unsettled()
        ]
        if attached:
            await asyncio.wait(
                [self.tasks.spawn(self.canceller.cancel_item_quietly(s)) for s in attached],
                timeout=CLOSE_TIMEOUT,
            )
        if not to_cancel:
            return False
        try:
            await asyncio.wait_for(self.queue.cancel_batch(to_cancel), CLOSE_TIMEOUT)
        except Exception as exc:
            log.warning("could not cancel %d batches while closing: %s", len(to_cancel), exc)
            return False
        return True


def _node_types(nodes: object) -> dict[str, Any] | None:
    """``node_id -> type`` of a graph's nodes, as the graph says them (None for no graph:
    then node frames are not checked against it)."""
    if not isinstance(nodes, dict) or not nodes:
        return None
    try:
        return {node_id: node.get("type") for node_id, node in nodes.items()}
    except AttributeError:  # a node that is not an object (a graph read from REST)
        return {
            node_id: node.get("type") if isinstance(node, Mapping) else None
            for node_id, node in nodes.items()
        }
