"""RunManager (``client.runs``): submits enqueue bodies and keeps every run honest.

- **Submitting.** The client picks the ``batch_id`` and registers the batch with the router
  *before* the POST, so no event is lost. ``enqueue_batch`` is never blindly retried: when
  its answer is lost (connection dropped, timeout, 5xx) the manager asks the server whether
  that batch exists (``GET b/{batch_id}/status``, then ``item_ids`` + item summaries) and
  adopts it; it sends again only when the server provably never got it (connection refused)
  or answered with an error and has no such batch.
- **Truth from REST.** One background task per client (started with the first run) polls the
  queue items of runs that went quiet, all runs after a reconnect or a ``queue_cleared``, and
  any run whose events left a question open, in bulk (1,000 ids per request).
- **Cancellation.** Cancelling a task that awaits a run cancels its server item (shielded,
  bounded in time) unless the run is detached; closing the client settles every run.
- **Concurrency.** ``max_concurrency`` caps the queue items this client has in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from .. import errors
from .._checks import check_int
from .._constants import DEFAULT_ORIGIN
from .._router import EventRouter
from ..types.batch import EnqueueBody
from ..types.queue import EnqueueBatchResult, SessionQueueItem
from ._room import cut_error
from ._run import TERMINAL, BatchRun, WorkflowRun, _now
from .results import ImageHost, iterated_nodes

if TYPE_CHECKING:
    from .._context import ClientContext
    from ..repositories.queue import QueueRepository

log = logging.getLogger("invokeai_client")

T = TypeVar("T")

__all__ = ["RunManager"]

QUIET_AFTER = 30.0
"""A run that heard nothing for this long is read over REST (socket up)."""
POLL_INTERVAL = 1.0
"""Seconds between REST reads of every run while the socket is down (or off)."""
CANCEL_TIMEOUT = 10.0
"""Seconds a cancel request may take when a run is abandoned or the client closes."""
CLOSE_TIMEOUT = 10.0
"""Seconds closing the client waits for pending cancels and background work."""
ENQUEUE_FATE_WINDOW = 30.0
"""Seconds the server is asked (by batch id) about an enqueue whose fate is unknown (a 5xx,
perhaps from a gateway while InvokeAI still writes the batch, a timeout, a reset) before its
silence counts as a definite no. Items that show up within it are adopted."""
UNREACHABLE_AFTER = 300.0
"""Seconds the server may stay unreachable (socket down, every REST read failing) before the
runs in flight end as ``lost`` with one clear error, so ``await run`` always ends."""
RECOVERY_DEADLINE = 120.0
"""Seconds spent at most finding out the fate of an enqueue (the server may be unreachable)."""
ENQUEUE_RESENDS = 2
"""How often an enqueue the server provably never recorded is sent again."""
SUMMARY_CHUNK = 1000
FULL_ITEM_CHUNK = 100


class _Limiter:
    """Counts queue items in flight; ``acquire`` waits (FIFO), ``release`` never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def acquire(self, count: int) -> int:
        need = min(count, self.limit)
        if not self._waiters and self.in_use + need <= self.limit:
            self.in_use += need
            return need
        future = asyncio.get_running_loop().create_future()
        entry = (need, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif future.done() and not future.cancelled():
                self.release(need)  # granted just as we were cancelled: give it back
            raise
        return need

    def close(self) -> None:
        """Fail every waiter: the client is closing."""
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_exception(
                    errors.InvokeAIError("the client closed before this run could be submitted")
                )

    def release(self, count: int) -> None:
        self.in_use -= count
        while self._waiters:
            need, future = self._waiters[0]
            if self.in_use + need > self.limit:
                break
            self._waiters.pop(0)
            if not future.done():
                self.in_use += need
                future.set_result(None)


RETRY_SEARCH = 20
"""Newest queue items searched for the new item of a retry (the server does not name it)."""

class RunManager:
    """Runs of one client: ``client.runs``. Submit graphs or enqueue bodies, attach to items.

    ``await client.runs.submit(graph)`` enqueues one graph and returns a
    :class:`~invokeai_client.runs.WorkflowRun` once the server has it;
    ``submit_batch(graph, data=..., runs=N)`` returns a :class:`~invokeai_client.runs.BatchRun`
    for a sweep in ONE request; :meth:`enqueue` takes any ``enqueue_batch`` body (what
    ``WorkflowHandle.build_batch()`` makes). :meth:`attach` follows an item that already
    exists (e.g. enqueued by an earlier process).
    """

    def __init__(
        self,
        context: ClientContext,
        *,
        queue: QueueRepository,
        image_host: ImageHost | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise errors.ValidationError(
                f"max_concurrency must be a positive int or None, got {max_concurrency!r}",
                input="max_concurrency",
                rule="int >= 1",
            )
        self.context = context
        self._queue = queue
        self.image_host = image_host  # output ImageRefs download through it
        self.router: EventRouter = context.router
        self._batches: dict[str, BatchRun] = {}
        self._dirty: set[WorkflowRun] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._posts: set[asyncio.Future[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._limiter = _Limiter(max_concurrency) if max_concurrency else None
        self._closed = False
        self.quiet_after = QUIET_AFTER
        """Seconds without news after which a run's item is read over REST."""
        self.poll_interval = POLL_INTERVAL
        """Seconds between REST reads of the runs in flight while there is no socket."""
        self.unreachable_after = UNREACHABLE_AFTER
        """Seconds of unreachable server after which runs in flight end as ``lost`` (see
        :data:`UNREACHABLE_AFTER`)."""
        self._unreachable_since: float | None = None
        self.enqueue_fate_window = ENQUEUE_FATE_WINDOW
        """Seconds an enqueue of unknown fate is looked for by batch id before it may be
        sent again (see :data:`ENQUEUE_FATE_WINDOW`)."""
        self.rest_checks = 0
        self.router.on_wake(self._on_disconnect)
        self.router.on_queue_cleared(self._on_queue_cleared)
        context.stream.on_reconnect(self._on_reconnect)

    def __repr__(self) -> str:
        return f"<RunManager of {self.context.base_url!r}: {self.in_flight} runs in flight>"

    # -- public --------------------------------------------------------------------------

    @property
    def max_concurrency(self) -> int | None:
        return self._limiter.limit if self._limiter else None

    @property
    def in_flight(self) -> int:
        """Queue items submitted by this client that have no final result yet."""
        return sum(
            batch.expected - len(batch._finished) for batch in self._batches.values()
        )

    @property
    def batches(self) -> list[BatchRun]:
        """Batches with items still in flight."""
        return list(self._batches.values())

    async def submit(
        self,
        graph: Mapping[str, Any],
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
        workflow: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Enqueue ``graph`` once; returns its run as soon as the server has it.

        ``data`` (InvokeAI's batch data) may substitute single values; it must describe
        exactly one item (use :meth:`submit_batch` for more).
        """
        body = _body(graph, data, 1, prepend, origin, destination, workflow, batch_id)
        batch = await self.enqueue(body, detach=detach, _single=True)
        return batch._only_run()

    async def submit_body(
        self, body: EnqueueBody | Mapping[str, Any], *, detach: bool = False
    ) -> WorkflowRun:
        """Submit an ``enqueue_batch`` body that makes exactly one queue item; its run."""
        batch = await self.enqueue(body, detach=detach, _single=True)
        return batch._only_run()

    async def submit_batch(
        self,
        graph: Mapping[str, Any],
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
        workflow: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """Enqueue ``graph`` for every combination of ``data`` (zipped within a group,
        cartesian across groups), ``runs`` times over, in ONE request."""
        body = _body(graph, data, runs, prepend, origin, destination, workflow, batch_id)
        return await self.enqueue(body, detach=detach)

    async def enqueue(
        self,
        body: EnqueueBody | Mapping[str, Any],
        *,
        detach: bool = False,
        partial: bool = False,
        names: Mapping[str, str] | None = None,
        _single: bool = False,
    ) -> BatchRun:
        """Submit an ``enqueue_batch`` body: an :class:`~invokeai_client.types.batch.EnqueueBody`
        (e.g. from the workflow compile stage) or its dict form
        (``{"batch": {...}, "prepend": bool}``, parsed with the same rules).

        The batch id is the body's (or a new uuid4, written into the request). Returns
        once the server has the items; their runs are ``batch.runs``. ``names`` maps a
        batch input's ``"node_id.field_name"`` to the name its ``field_values`` use. A batch
        the server's queue cuts (``max_queue_size``) raises :class:`~errors.QueueFullError`
        after its items were canceled, unless ``partial``: then the batch holds the items
        that were made (the first ones, in order) and the caller sends the rest later.
        """
        self._check_open()
        parsed, request, groups, iterated = prepare_body(body)
        expected = parsed.item_count
        node_count = len(parsed.batch.graph["nodes"])
        if _single and expected != 1:
            raise errors.ValidationError(
                f"submit() makes exactly one queue item, but this batch makes {expected}; "
                "use submit_batch() for sweeps and runs > 1",
                input="data",
                rule="exactly one item",
            )
        batch_json = request["batch"]
        batch = BatchRun(
            self,
            batch_json["batch_id"],
            expected=expected,
            groups=groups,
            iterated=iterated,
            node_count=node_count,
            origin=batch_json.get("origin"),
            destination=batch_json.get("destination"),
            detached=detach,
        )
        if names:
            batch.names = dict(names)
        if batch.batch_id in self._batches:
            raise errors.ValidationError(
                f"batch_id {batch.batch_id!r} is already in flight on this client",
                input="batch_id",
                rule="unique per submission",
            )
        if self._limiter is not None:
            batch.held = await self._limiter.acquire(expected)
            if self._closed:
                self._limiter.release(batch.held)
                raise errors.InvokeAIError("the client is closed; runs cannot be submitted")
        self._batches[batch.batch_id] = batch
        self.router.add_batch(batch.batch_id, batch)
        self._ensure_supervisor()
        # The POST runs in a task of its own so that cancelling the caller never cuts a
        # request whose fate would then be unknown; the caller waits on a plain future.
        loop = asyncio.get_running_loop()
        post = loop.create_task(self._post_enqueue(batch, request))
        self._posts.add(post)
        posted = loop.create_future()
        post.add_done_callback(functools.partial(self._posted, posted))
        try:
            await posted
        except asyncio.CancelledError:
            # The request may still land: finish it in the background, then cancel it.
            self._spawn(self._cancel_when_enqueued(post, batch))
            raise
        try:
            answer = post.result()
        except BaseException:
            self._drop(batch)
            raise
        if self._closed:
            outcome = "it was left on the server"
            if not detach:  # nothing else will cancel it: the close has passed its cancels
                batch.confirm(answer)
                _, outcome = await asyncio.shield(self._spawn(self._cancel_batch_quietly(batch)))
            self._drop(batch)
            raise errors.InvokeAIError(
                f"the client closed while batch {batch.batch_id} was being submitted; {outcome}"
            )
        if answer.enqueued == 0 or (answer.enqueued < answer.requested and not partial):
            raise await self._cut(batch, answer)
        batch.confirm(answer)
        return batch

    async def _cut(self, batch: BatchRun, answer: EnqueueBatchResult) -> errors.QueueFullError:
        """The server's queue cut the batch: cancel what it made, never run part silently."""
        canceled = True
        if answer.enqueued or answer.item_ids:
            batch.confirm(answer)
            try:
                await self._queue.cancel_batch(batch.batch_id)
            except errors.InvokeAIError as exc:
                log.warning("could not cancel the cut batch %s: %s", batch.batch_id, exc)
                canceled = False
        self._drop(batch)
        return cut_error(batch.batch_id, answer.requested, answer.enqueued, canceled)

    def _posted(self, posted: asyncio.Future[None], post: asyncio.Task[Any]) -> None:
        self._posts.discard(post)
        if not posted.done():
            posted.set_result(None)

    async def attach(self, item_id: int, *, detach: bool = True) -> WorkflowRun:
        """Follow an existing queue item (e.g. enqueued by another process).

        Attached runs are detached by default: cancelling a task that awaits one leaves the
        item alone; pass ``detach=False`` to cancel it then.
        """
        self._check_open()
        for batch in self._batches.values():
            run = batch._runs.get(item_id)
            if run is not None:
                return run
        item = await self._queue.get(item_id)
        groups = [
            [{"node_path": fv.node_path, "field_name": fv.field_name, "items": [fv.value]}]
            for fv in item.field_values or ()
        ]
        batch = BatchRun(
            self,
            item.batch_id,
            expected=1,
            groups=groups or None,
            iterated=iterated_nodes(item.session.get("graph")),
            node_count=len((item.session.get("graph") or {}).get("nodes") or {}),
            origin=item.origin,
            destination=item.destination,
            detached=detach,
        )
        batch.key = f"{item.batch_id}#{item_id}"
        self._batches[batch.key] = batch
        batch.confirm(EnqueueBatchResult(enqueued=1, requested=1, item_ids=[item_id]))
        run = batch._runs[item_id]
        run.apply_item(item)
        if run._result is None:
            self._ensure_supervisor()
        return run

    async def retry(self, run: WorkflowRun | int, *, detach: bool = False) -> WorkflowRun:
        """Run a failed or canceled queue item again and follow the new item.

        InvokeAI's retry enqueues a NEW item (same batch, graph and values) and does not
        say which; it is found as the newest retried item of that batch. ``run``
        is a :class:`WorkflowRun` or an item id. A completed (or still running) item is
        refused with :class:`~errors.ValidationError`.
        """
        self._check_open()
        if isinstance(run, WorkflowRun):
            item_id = run.item_id
            known = run.result_nowait()
            if known is not None and known.status not in ("failed", "canceled"):
                raise errors.ValidationError(
                    f"queue item {item_id} is {known.status}: only failed or canceled items "
                    "can be retried",
                    input="run",
                    rule="failed or canceled",
                )
        else:
            item_id = check_int("run", run, minimum=1)
        answer = await self._queue.retry(item_id)
        if not answer.retried_item_ids:
            item = await self._queue.get(item_id)
            raise errors.ValidationError(
                f"queue item {item_id} is {item.status}: only failed or canceled items can be "
                "retried (or the queue is full)",
                input="run",
                rule="failed or canceled",
            )
        # The new item names the first item of its retry chain, not this one; it is the
        # newest retried item of this batch.
        batch_id = (await self._queue.get(answer.retried_item_ids[0])).batch_id
        newer = [i for i in await self._queue.item_ids(order="desc") if i > item_id]
        retried = [
            item.item_id
            for item in await self._queue.get_many(newer[:RETRY_SEARCH])
            if item.batch_id == batch_id and item.retried_from_item_id is not None
        ]
        if not retried:
            raise errors.InvokeAIError(
                f"the server retried queue item {item_id} but its new item was not found among "
                f"the {RETRY_SEARCH} newest"
            )
        return await self.attach(max(retried), detach=detach)

    def stats(self) -> dict[str, Any]:
        """Counters for debugging: runs in flight, REST checks, router counters."""
        return {
            "in_flight": self.in_flight,
            "batches": len(self._batches),
            "rest_checks": self.rest_checks,
            "background_tasks": len(self._tasks) + len(self._posts),
            **{f"router_{k}": v for k, v in self.router.stats().items()},
        }

    # -- enqueue -------------------------------------------------------------------------

    async def _post_enqueue(self, batch: BatchRun, request: dict[str, Any]) -> EnqueueBatchResult:
        http = self.context.http
        resends = 0
        while True:
            try:
                raw = await http.request(
                    "POST", f"{self.context.queue_path}/enqueue_batch", json=request, retry=False,
                    expect="bytes",
                )
                answer = read_enqueue_answer(raw, batch.batch_id)
                if answer.enqueued and not answer.item_ids:
                    # InvokeAI before 6.0 does not name the new items: find them over REST.
                    answer.item_ids = await self._find_batch_items(batch, answer.enqueued)
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
            found = await self._recover_enqueue(batch, fate)
            if found is not None:
                return found
            if resends >= ENQUEUE_RESENDS:
                raise errors.ConnectionError(
                    f"enqueue of batch {batch.batch_id} failed ({fate}); the server has no "
                    "record of it, and it was already sent again "
                    f"{ENQUEUE_RESENDS} times"
                ) from fate
            resends += 1
            log.warning("batch %s was not enqueued (%s; the server had no record of it for "
                        "%.0f s); sending it again", batch.batch_id, fate,
                        self.enqueue_fate_window)

    async def _recover_enqueue(
        self, batch: BatchRun, cause: errors.InvokeAIError
    ) -> EnqueueBatchResult | None:
        """Find out over REST, by the client-chosen batch id, whether an enqueue whose fate is
        unknown went through.

        Returns the reconstructed answer when its items are there; None only on a definite no
        (every answer over :attr:`enqueue_fate_window` seconds, at least three, said the batch
        has no items), after which sending again cannot double it. When the server cannot be
        asked for long enough, raises ConnectionError: the batch is not sent again.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        window = self.enqueue_fate_window
        deadline = started + max(RECOVERY_DEADLINE, 2 * window)
        delay = 0.25
        last_error: Exception | None = None
        noes = 0
        log.info("enqueue of batch %s has an unknown fate (%s); asking the server for up to "
                 "%.0f s", batch.batch_id, cause, window)
        while True:
            try:
                status = await self._queue.batch_status(batch.batch_id)
                if status.total > 0:
                    ids = await self._find_batch_items(batch, status.total)
                    return EnqueueBatchResult(
                        enqueued=status.total,
                        requested=batch.expected,
                        item_ids=ids,
                        batch={"batch_id": batch.batch_id},
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
        raise errors.ConnectionError(
            f"enqueue of batch {batch.batch_id} has an unknown fate ({cause}) and the server "
            f"could not be asked long enough whether it has it ({last_error}); it was not "
            f"sent again. Check GET {self.context.queue_path}/b/{batch.batch_id}/status "
            "before sending it again"
        ) from cause

    async def _find_batch_items(self, batch: BatchRun, total: int) -> list[int]:
        """The item ids of a batch: from events already routed, else by scanning the queue."""
        if len(batch._runs) >= total:
            return sorted(batch._runs)
        all_ids = await self._queue.item_ids(order="desc")
        found: list[int] = []
        for start in range(0, len(all_ids), SUMMARY_CHUNK):
            chunk = all_ids[start : start + SUMMARY_CHUNK]
            for item_id, status_and_batch in (await self._statuses(chunk)).items():
                if status_and_batch[1] == batch.batch_id:
                    found.append(item_id)
            if len(found) >= total:
                break
        return sorted(found)

    async def _cancel_when_enqueued(
        self, post: asyncio.Future[EnqueueBatchResult], batch: BatchRun
    ) -> None:
        try:
            answer = await post
        except Exception:
            self._drop(batch)
            return
        batch.confirm(answer)
        if not batch.detached:
            await self._cancel_batch_quietly(batch)

    # -- REST reads (through client.queue) ------------------------------------------------

    async def _items(self, ids: list[int]) -> list[SessionQueueItem]:
        return await self._queue.get_many(ids)

    async def _statuses(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        """``{item_id: (status, batch_id)}`` for the ids the server still has."""
        self.rest_checks += 1
        summaries = await self._queue.get_summaries(ids)
        return {s.item_id: (s.status, s.batch_id) for s in summaries}

    # -- truth from REST -----------------------------------------------------------------

    def check_soon(self, run: WorkflowRun) -> None:
        """Have the background task read ``run``'s item over REST shortly."""
        self._dirty.add(run)
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _on_disconnect(self) -> None:
        # Events sent while the socket is down are lost for good: whatever runs now may
        # only settle from REST.
        for batch in self._batches.values():
            if not batch.confirmed:
                batch.gap = True
            for run in batch._runs.values():
                run._gap = True
        self._poke()

    async def _on_reconnect(self) -> None:
        self._unreachable_since = None
        # Events are not replayed after a reconnect: read every run in flight over REST.
        for batch in self._batches.values():
            if batch.confirmed:
                self._dirty.update(batch.unsettled())
        self._poke()

    def _on_queue_cleared(self) -> None:
        for batch in self._batches.values():
            if batch.confirmed:
                self._dirty.update(batch.unsettled())
        self._poke()

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._wake = asyncio.Event()
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="invokeai-client runs"
            )

    async def _supervise(self) -> None:
        wake = self._wake
        assert wake is not None
        backoff = 0.0
        while not self._closed:
            connected = self.context.connected
            tick = min(self.quiet_after / 4, 5.0) if connected else self.poll_interval
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), tick)
            wake.clear()
            if backoff:
                await asyncio.sleep(backoff)
            due = self._due(connected)
            if not due:
                continue
            try:
                await self._reconcile(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(5.0, max(0.25, backoff * 2))
                log.info("REST catch-up of %d runs failed (%s); retrying in %.1fs",
                         len(due), exc, backoff)
                self._dirty.update(run for run in due if run._result is None)
                self._note_unreachable(exc)
            else:
                backoff = 0.0
                self._unreachable_since = None

    def _note_unreachable(self, exc: Exception) -> None:
        """Count how long the server has been out of reach; past :attr:`unreachable_after`,
        end every run in flight as ``lost`` (logged once)."""
        unreachable = (errors.ConnectionError, errors.TimeoutError, errors.InternalServerError)
        if not isinstance(exc, unreachable) or self.context.connected:
            self._unreachable_since = None
            return
        now = _now()
        since = self._unreachable_since
        if since is None:
            self._unreachable_since = now
            return
        if now - since < self.unreachable_after:
            return
        runs = [run for b in self._batches.values() if b.confirmed for run in b.unsettled()]
        log.error("InvokeAI at %s has been unreachable for %.0f s (%s); ending %d runs in "
                  "flight as lost", self.context.base_url, now - since, exc, len(runs))
        for run in runs:
            run.end_locally("lost", (
                f"InvokeAI at {self.context.base_url} was unreachable for {now - since:.0f} s "
                f"(last error: {exc}); the outcome of queue item {run.item_id} is unknown"
            ))
        self._unreachable_since = None

    def _due(self, connected: bool) -> set[WorkflowRun]:
        due = {run for run in self._dirty if run._result is None}
        self._dirty.clear()
        quiet = self.quiet_after if connected else self.poll_interval
        horizon = _now() - quiet
        for batch in self._batches.values():
            if not batch.confirmed:
                continue
            for run in batch._runs.values():
                if run._result is None and run._heard <= horizon:
                    due.add(run)
        return due

    async def _reconcile(self, runs: Iterable[WorkflowRun]) -> None:
        """Read the given runs' items over REST and settle or update them."""
        by_id = {run.item_id: run for run in runs if run._result is None}
        # Runs the socket already saw end only need their full item; the rest get a cheap
        # status check first.
        finished = [run for run in by_id.values() if run.status in TERMINAL]
        ids = sorted(item_id for item_id, run in by_id.items() if run.status not in TERMINAL)
        for start in range(0, len(ids), SUMMARY_CHUNK):
            chunk = ids[start : start + SUMMARY_CHUNK]
            statuses = await self._statuses(chunk)
            for item_id in chunk:
                run = by_id[item_id]
                known = statuses.get(item_id)
                if known is None:
                    run.lose(f"the server no longer has queue item {item_id}")
                elif known[1] != run.batch_id:
                    run.lose(f"queue item {item_id} now belongs to another batch")
                elif known[0] in TERMINAL:
                    finished.append(run)
                else:
                    run.apply_status(known[0])
        for start in range(0, len(finished), FULL_ITEM_CHUNK):
            chunk_runs = finished[start : start + FULL_ITEM_CHUNK]
            items = {item.item_id: item for item in await self._items(
                [run.item_id for run in chunk_runs]
            )}
            for run in chunk_runs:
                item = items.get(run.item_id)
                if item is None:
                    run.lose(f"the server no longer has queue item {run.item_id}")
                else:
                    run.apply_item(item)

    # -- cancellation --------------------------------------------------------------------

    async def cancel_run(self, run: WorkflowRun) -> str:
        """Cancel one item on the server and apply what the server answers; the item's
        status the server reported (``"canceled"`` when it canceled it)."""
        if run._result is not None:
            return run._result.status
        try:
            item = await self._queue.cancel(run.item_id)
        except errors.NotFoundError:
            run.lose(f"the server no longer has queue item {run.item_id}")
            return "lost"
        if item.status in TERMINAL and not item.session:
            self.check_soon(run)
        else:
            run.apply_item(item)
        return item.status

    async def cancel_batch(self, batch: BatchRun) -> int:
        """Cancel every pending or running item of ``batch``; returns the server's count."""
        if batch.key != batch.batch_id:
            # An attached item: its batch's other items are not ours to cancel.
            runs = batch.unsettled()
            for run in runs:
                await self.cancel_run(run)
            return sum(1 for run in runs if run.status == "canceled")
        canceled = await self._queue.cancel_batch(batch.batch_id)
        # Servers before 6.14 send no event for pending items canceled in bulk.
        for run in batch.unsettled():
            self.check_soon(run)
        return canceled

    async def cancel_run_shielded(self, run: WorkflowRun) -> tuple[bool, str]:
        """Cancel ``run``'s item even if the caller is being cancelled (bounded in time):
        whether the server confirmed the cancel, and what happened in words."""
        return await asyncio.shield(self._spawn(self._cancel_run_quietly(run)))

    async def cancel_batch_shielded(self, batch: BatchRun) -> tuple[bool, str]:
        return await asyncio.shield(self._spawn(self._cancel_batch_quietly(batch)))

    async def _cancel_run_quietly(self, run: WorkflowRun) -> tuple[bool, str]:
        try:
            status = await asyncio.wait_for(self.cancel_run(run), CANCEL_TIMEOUT)
        except Exception as exc:
            log.warning("could not cancel queue item %s: %s", run.item_id, exc)
            self.check_soon(run)
            return False, f"canceling it failed ({exc}); it may still run on the server"
        if status == "canceled":
            return True, "it was canceled on the server"
        return False, f"the server did not cancel it: it was {status} already"

    async def _cancel_batch_quietly(self, batch: BatchRun) -> tuple[bool, str]:
        try:
            count = await asyncio.wait_for(self.cancel_batch(batch), CANCEL_TIMEOUT)
        except Exception as exc:
            log.warning("could not cancel batch %s: %s", batch.batch_id, exc)
            return False, f"canceling it failed ({exc}); its items may still run on the server"
        if count:
            return True, f"the server canceled {count} of its items"
        return False, "the server had none of its items left to cancel"

    # -- bookkeeping ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _run_settled(self, batch: BatchRun) -> None:
        if self._limiter is not None and batch.held:
            keep = min(batch.held, batch.expected - len(batch._finished))
            if keep < batch.held:
                self._limiter.release(batch.held - keep)
                batch.held = keep

    def _batch_done(self, batch: BatchRun) -> None:
        if self._limiter is not None and batch.held:
            self._limiter.release(batch.held)
            batch.held = 0
        if self._batches.get(batch.key) is batch:
            del self._batches[batch.key]
        self.router.remove_batch(batch.batch_id, batch)
        for item_id, run in batch._runs.items():
            self.router.remove_item(item_id, run)

    def _drop(self, batch: BatchRun) -> None:
        """Forget a batch that was never enqueued."""
        if self._batches.get(batch.key) is batch:
            del self._batches[batch.key]
        self.router.remove_batch(batch.batch_id, batch)
        if self._limiter is not None and batch.held:
            self._limiter.release(batch.held)
            batch.held = 0

    def _check_open(self) -> None:
        if self._closed:
            raise errors.InvokeAIError("the client is closed; runs cannot be submitted")
        if not self.context.http.is_open:
            raise errors.InvokeAIError(
                "the client is not open: use 'async with AsyncClient(...)' or "
                "'await client.open()'"
            )

    def reopen(self) -> None:
        """Allow runs again after the client was closed and opened again."""
        self._closed = False

    async def aclose(self) -> None:
        """Settle every run: cancel the server items of runs that are not detached (in bulk,
        bounded in time), end every unfinished run locally, stop all background work."""
        self._closed = True
        if self._limiter is not None:
            self._limiter.close()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        if self._posts:
            # Let enqueues in flight land first, so that the cancel below can reach them.
            await asyncio.wait(list(self._posts), timeout=CLOSE_TIMEOUT)
        batches = list(self._batches.values())
        to_cancel = [
            b.batch_id for b in batches if not b.detached and not b.done and b.key == b.batch_id
        ]
        attached = [
            run for b in batches if not b.detached and b.key != b.batch_id for run in b.unsettled()
        ]
        if attached and self.context.http.is_open:
            await asyncio.wait(
                [self._spawn(self._cancel_run_quietly(run)) for run in attached],
                timeout=CLOSE_TIMEOUT,
            )
        cancel_sent = False
        if to_cancel and self.context.http.is_open:
            try:
                await asyncio.wait_for(self._queue.cancel_batch(to_cancel), CLOSE_TIMEOUT)
                cancel_sent = True
            except Exception as exc:
                log.warning("could not cancel %d batches while closing: %s", len(to_cancel), exc)
        for batch in batches:
            for run in batch.unsettled():
                if batch.detached:
                    run.end_locally("detached", "the client closed; the item was left running")
                else:
                    run.end_locally(
                        "canceled",
                        "the client closed; the item was canceled on the server"
                        if cancel_sent else "the client closed; canceling the item failed",
                    )
            if not batch.confirmed:
                self._drop(batch)
        if self._tasks or self._posts:
            pending = [*self._tasks, *self._posts]
            _, still = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
            for task in still:
                task.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
        self._dirty.clear()


# -- enqueue answers ---------------------------------------------------------------------


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


def _body(
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


def prepare_body(
    body: EnqueueBody | Mapping[str, Any],
) -> tuple[EnqueueBody, dict[str, Any], list[list[dict[str, Any]]] | None, frozenset[str]]:
    """Parse an enqueue body with every rule checked (see :mod:`invokeai_client.types.batch`)
    and fill in ``origin``.

    Returns the body, the request to send, its batch data groups and the graph's iterated
    nodes. Raises :class:`~invokeai_client.errors.ValidationError` naming the bad part before
    anything is sent: InvokeAI accepts some broken batches and then stalls its whole queue on
    them.
    """
    parsed: EnqueueBody = EnqueueBody.parse(body)
    if parsed.batch.origin is None:
        parsed = parsed.with_origin(DEFAULT_ORIGIN)
    request = parsed.to_dict()
    return parsed, request, request["batch"].get("data"), iterated_nodes(parsed.batch.graph)
