"""WorkflowRun (one queue item) and BatchRun (the items of one enqueue call): the public,
awaitable faces of a :class:`~invokeai_client.runs._tracker.BatchTracker` and its items'
:class:`~invokeai_client.runs._state.ItemState` s.

They hold no state of their own beyond which item they show: the state machine decides, the
tracker counts and wakes waiters, and these objects wait, read events and ask for cancels.
While anyone holds a run, ``batch.runs`` gives that same object back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from typing import Any

from .. import errors
from .._checks import check_seconds
from .._router import Mailbox
from ..types.queue import BatchStatus
from ._state import EventSink, ItemState
from ._tracker import BatchTracker
from .events import NodeProgress, RunEvent
from .results import FieldValues, WorkflowResult

__all__ = ["BatchRun", "WorkflowRun", "abandon_unreceived", "batch_view", "run_view"]


def run_view(tracker: BatchTracker, item_id: int) -> WorkflowRun:
    """The WorkflowRun of ``item_id`` in ``tracker`` (the same object while anyone holds it)."""
    run = tracker.view(item_id)
    if run is None:
        run = WorkflowRun(tracker, tracker.state(item_id))
        tracker.keep_view(item_id, run)
    assert isinstance(run, WorkflowRun)
    return run


def batch_view(tracker: BatchTracker) -> BatchRun:
    """The BatchRun of ``tracker`` (the same object while anyone holds it)."""
    batch = tracker.view("batch")
    if batch is None:
        batch = BatchRun(tracker)
        tracker.keep_view("batch", batch)
    assert isinstance(batch, BatchRun)
    return batch


def abandon_unreceived(result: object) -> asyncio.Future[tuple[bool, str]] | None:
    """Abandon a run its caller will never receive (its call finished as it was interrupted):
    the server item is canceled unless detached, as when a waiter is cancelled. ``None``
    when ``result`` is not a run."""
    if isinstance(result, (WorkflowRun, BatchRun)):
        return asyncio.ensure_future(result._abandon())
    return None


def _is_progress(event: RunEvent) -> bool:
    return isinstance(event, NodeProgress)


class WorkflowRun:
    """One queue item on its way through the server: awaitable, observable, cancelable.

    ``await run`` (or ``await run.result(timeout=...)``) gives the
    :class:`~invokeai_client.runs.results.WorkflowResult` once the item completed, and
    raises :class:`~invokeai_client.errors.RunFailedError` /
    :class:`~invokeai_client.errors.RunCanceledError` (carrying the item id, node id, error
    type, message and traceback) when it did not. ``run.events()`` yields typed events of
    this item; ``run.cancel()`` cancels it on the server.

    Cancelling the task that awaits a run cancels the server item too (shielded, bounded in
    time), unless :meth:`detach` was called or another task still awaits it.
    """

    __slots__ = ("__weakref__", "_state", "_tracker")

    def __init__(self, tracker: BatchTracker, state: ItemState) -> None:
        self._tracker = tracker
        self._state = state

    def __repr__(self) -> str:
        return (
            f"<WorkflowRun item_id={self.item_id} batch_id={self.batch_id!r} "
            f"status={self.status!r}>"
        )

    @property
    def item_id(self) -> int:
        return self._state.item_id

    @property
    def batch_id(self) -> str:
        return self._tracker.batch_id

    @property
    def session_id(self) -> str | None:
        return self._state.session_id

    @property
    def status(self) -> str:
        return self._state.status

    @property
    def index(self) -> int:
        """The item's position in its batch (submission order); -1 until known."""
        return self._state.index

    @property
    def batch(self) -> BatchRun:
        return batch_view(self._tracker)

    @property
    def done(self) -> bool:
        """Whether the run has its final result."""
        return self._state.result is not None

    @property
    def detached(self) -> bool:
        return self._tracker.detached

    def detach(self) -> WorkflowRun:
        """Leave the server item alone when the awaiting task is cancelled or the client
        closes (the whole batch is detached); returns self."""
        self._tracker.detached = True
        return self

    @property
    def outputs(self) -> Mapping[str, Any]:
        """The outputs mapped so far (all of them once the run is done)."""
        result = self._state.result
        return result.outputs if result is not None else self._state.outputs

    @property
    def current_node(self) -> str | None:
        """The graph node executing right now (as far as the socket told), or None."""
        return self._state.current_node

    def result_nowait(self) -> WorkflowResult | None:
        """The result if the run is done, else None; never raises."""
        return self._state.result

    async def result(self, timeout: float | None = None) -> WorkflowResult:
        """Wait for the result; raise the run's error unless it completed.

        When ``timeout`` seconds pass first, the server item is canceled (unless the run
        is detached or awaited elsewhere) and :class:`~invokeai_client.errors.RunTimeoutError`
        says whether it was.
        """
        check_seconds("timeout", timeout)  # a bad timeout must not cancel the item
        state = self._state
        if state.result is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._tracker.add_item_waiter(state.item_id, waiter)
            try:
                if timeout is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, timeout)
            except asyncio.TimeoutError:
                self._forget_waiter(waiter)
                raise self._timed_out(timeout, *await self._abandon()) from None
            except asyncio.CancelledError:
                self._forget_waiter(waiter)
                await self._abandon()
                raise
        result = state.result
        assert result is not None
        return result.raise_for_status()

    def _timed_out(
        self, timeout: float | None, canceled: bool, outcome: str
    ) -> errors.RunTimeoutError:
        return errors.RunTimeoutError(
            f"queue item {self.item_id} did not finish within {timeout}s "
            f"(last status {self.status!r}); {outcome}",
            item_id=self.item_id,
            batch_id=self.batch_id,
            session_id=self.session_id,
            status=self.status,
            canceled=canceled,
        )

    @property
    def _listeners(self) -> list[EventSink] | None:
        """The readers of this run's events (None: nobody reads)."""
        return self._state.listeners

    @property
    def _waiters(self) -> list[asyncio.Future[None]] | None:
        """The futures of the tasks awaiting this run (None: nobody waits)."""
        return self._tracker.item_waiting(self.item_id)

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._tracker.forget_item_waiter(self.item_id, waiter)

    async def _abandon(self) -> tuple[bool, str]:
        """The last waiter gave up: cancel the server item unless detached. Whether the
        server confirmed the cancel, and what happened in words."""
        tracker = self._tracker
        if self.done or tracker.item_waiting(self.item_id) or tracker.detached:
            return False, "it was left running on the server"
        return await tracker.owner.cancel_item_shielded(self._state)

    def __await__(self) -> Generator[Any, None, WorkflowResult]:
        return self.result().__await__()

    async def cancel(self) -> str:
        """Cancel the item on the server; returns its status afterwards.

        A finished item is left as it is (the server ignores the request), so this may
        return ``"completed"``.
        """
        await self._tracker.owner.cancel_item(self._state)
        return self.status

    async def retry(self, *, detach: bool = False) -> WorkflowRun:
        """Run this failed or canceled item again (a new item in the same batch); returns
        the new item's run. See :meth:`RunManager.retry`."""
        known = self._state.result
        if known is not None and known.status not in ("failed", "canceled"):
            raise errors.ValidationError(
                f"queue item {self.item_id} is {known.status}: only failed or canceled items "
                "can be retried",
                input="run",
                rule="failed or canceled",
            )
        tracker, item_id = await self._tracker.owner.retry_item(self.item_id, detach=detach)
        return run_view(tracker, item_id)

    def events(self) -> AsyncIterator[RunEvent]:
        """Typed events of this run, ending after its terminal status.

        What happened before the call is replayed first (status, then each finished node
        as started + completed), so a late reader still sees the whole story; progress is
        live only. A slow reader never holds anything up: when more than a few dozen
        progress events wait, the oldest are dropped; nothing else is.
        """
        return _read_events(self._tracker, [self._state], whole_batch=False)


async def _read_events(
    tracker: BatchTracker, states: Sequence[ItemState], *, whole_batch: bool
) -> AsyncIterator[RunEvent]:
    mailbox: Mailbox[RunEvent] = Mailbox(_is_progress)
    for state in states:
        for replayed in state.replay():
            mailbox.put(replayed)
    owner: list[Any] | None = None
    batch_reader = False
    if whole_batch:
        if tracker.done:
            mailbox.close()
        else:
            tracker.add_listener(mailbox)
            batch_reader = True
    else:
        state = states[0]
        if state.result is not None:
            mailbox.close()
        else:
            if state.listeners is None:
                state.listeners = []
            owner = state.listeners
            owner.append(mailbox)
    try:
        while True:
            event = await mailbox.get()
            if event is None:
                return
            yield event
    finally:
        mailbox.close()
        if batch_reader:
            tracker.remove_listener(mailbox)
        elif owner is not None and mailbox in owner:
            owner.remove(mailbox)

class BatchRun:
    """The queue items of one ``enqueue_batch`` call (a sweep, ``runs=N``, or one run).

    ``async for result in batch.as_completed()`` yields each item's
    :class:`~invokeai_client.runs.results.WorkflowResult` as it finishes (failed ones too:
    check ``result.ok``), each exactly once; ``await batch.results()`` (or ``await batch``)
    gives them all in submission order. :attr:`counts` are live; :meth:`cancel` cancels every
    item still pending or running. Cancelling a task that waits on the batch cancels the
    batch on the server unless it is :meth:`detach` ed.
    """

    __slots__ = ("__weakref__", "_tracker")

    def __init__(self, tracker: BatchTracker) -> None:
        self._tracker = tracker

    def __repr__(self) -> str:
        tracker = self._tracker
        return (
            f"<BatchRun batch_id={self.batch_id!r} items={tracker.expected} "
            f"finished={len(tracker.finished)}>"
        )

    @property
    def batch_id(self) -> str:
        return self._tracker.batch_id

    @property
    def expected(self) -> int:
        """How many queue items the batch makes."""
        return self._tracker.expected

    @property
    def origin(self) -> str | None:
        return self._tracker.origin

    @property
    def destination(self) -> str | None:
        return self._tracker.destination

    @property
    def priority(self) -> int:
        return self._tracker.priority

    @property
    def confirmed(self) -> bool:
        """Whether the server's enqueue answer (or its REST reconstruction) arrived."""
        return self._tracker.confirmed

    @property
    def detached(self) -> bool:
        return self._tracker.detached

    @property
    def node_count(self) -> int:
        """How many nodes the batch's graph has (each item reports one output per node)."""
        return self._tracker.node_count

    @property
    def runs(self) -> list[WorkflowRun]:
        """The runs of the batch in submission order (ascending item id)."""
        tracker = self._tracker
        return [run_view(tracker, item_id) for item_id in tracker.item_ids()]

    @property
    def item_ids(self) -> list[int]:
        return self._tracker.item_ids()

    @property
    def copies(self) -> list[int]:
        """Item ids of copies of this batch the server made without being asked (a proxy or
        gateway that sent the enqueue twice): each is canceled unless it had ended, and
        logged. Seen once a copy starts (its first event), while the batch is tracked."""
        return list(self._tracker.copies)

    def __len__(self) -> int:
        return self._tracker.expected

    def __iter__(self) -> Iterator[WorkflowRun]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> WorkflowRun:
        return self.runs[index]

    @property
    def done(self) -> bool:
        """Whether every item has its final result."""
        return self._tracker.done

    @property
    def counts(self) -> BatchStatus:
        """Live counts of the items by status (from events and REST catch-up)."""
        tracker = self._tracker
        counts = tracker.counts
        known = sum(counts.values())
        return BatchStatus(
            batch_id=tracker.batch_id,
            origin=tracker.origin,
            destination=tracker.destination,
            pending=counts.get("pending", 0) + max(0, tracker.expected - known),
            in_progress=counts.get("in_progress", 0),
            waiting=counts.get("waiting", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0) + counts.get("lost", 0),
            canceled=counts.get("canceled", 0),
            total=tracker.expected,
        )

    def detach(self) -> BatchRun:
        """Leave the server items alone when a waiting task is cancelled or the client
        closes; returns self."""
        self._tracker.detached = True
        return self

    async def cancel(self) -> int:
        """Cancel every pending or running item of the batch; returns how many were."""
        return await self._tracker.owner.cancel_batch(self._tracker)

    def events(self) -> AsyncIterator[RunEvent]:
        """Typed events of every item of the batch (see :meth:`WorkflowRun.events`)."""
        tracker = self._tracker
        states = [tracker.state(item_id) for item_id in tracker.item_ids()]
        return _read_events(tracker, states, whole_batch=True)

    async def as_completed(self) -> AsyncIterator[WorkflowResult]:
        """Each item's result as it finishes, exactly once; failed items included."""
        tracker = self._tracker
        index = 0
        tracker.waiters += 1
        abandoned = False
        try:
            while True:
                finished = tracker.finished
                while index < len(finished):
                    result = finished[index]
                    index += 1
                    yield result
                if tracker.done:
                    return
                await tracker.wait_change()
        except asyncio.CancelledError:
            tracker.waiters -= 1
            abandoned = True
            await self._abandon()
            raise
        finally:
            if not abandoned:
                tracker.waiters -= 1

    async def results(self, timeout: float | None = None) -> list[WorkflowResult]:
        """Every item's result, in submission order, once all are done.

        Failed and canceled items are included (``result.ok`` is False); call
        ``result.raise_for_status()`` to turn one into its error. ``timeout`` bounds the
        wait like :meth:`WorkflowRun.result`.
        """
        check_seconds("timeout", timeout)  # a bad timeout must not cancel the batch
        tracker = self._tracker
        tracker.waiters += 1
        try:
            if not tracker.done:
                await asyncio.wait_for(self._until_done(), timeout)
        except asyncio.TimeoutError:
            tracker.waiters -= 1
            canceled, outcome = await self._abandon()
            raise errors.RunTimeoutError(
                f"batch {self.batch_id} did not finish within {timeout}s "
                f"({len(tracker.finished)} of {tracker.expected} items done); {outcome}",
                batch_id=self.batch_id,
                canceled=canceled,
            ) from None
        except asyncio.CancelledError:
            tracker.waiters -= 1
            await self._abandon()
            raise
        tracker.waiters -= 1
        by_id = {result.item_id: result for result in tracker.finished}
        return [by_id[item_id] for item_id in tracker.item_ids() if item_id in by_id]

    @property
    def _waiters(self) -> int:
        """How many tasks wait on the whole batch."""
        return self._tracker.waiters

    async def _until_done(self) -> None:
        tracker = self._tracker
        while not tracker.done:
            await tracker.wait_change()

    def __await__(self) -> Generator[Any, None, list[WorkflowResult]]:
        return self.results().__await__()

    async def _abandon(self) -> tuple[bool, str]:
        tracker = self._tracker
        if tracker.done or tracker.waiters > 0 or tracker.detached:
            return False, "it was left running on the server"
        return await tracker.owner.cancel_batch_shielded(tracker)

    def field_values(self, index: int) -> FieldValues:
        """The batch values substituted into the item at ``index`` (submission order), keyed
        as the sweep named them (see :class:`~invokeai_client.runs.FieldValues`)."""
        expected = self._tracker.expected
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < expected:
            raise errors.ValidationError(
                f"index must be an item position 0..{expected - 1} of this batch, "
                f"got {index!r}",
                input="index",
                rule=f"0 <= index < {expected}",
            )
        return self._tracker.values_at(index)
