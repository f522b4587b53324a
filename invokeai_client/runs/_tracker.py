"""The bookkeeping of one enqueue call: its items' states, counts, results and waiters.

A :class:`BatchTracker` is what the run manager, the router and the public
:class:`~invokeai_client.runs.BatchRun` / :class:`~invokeai_client.runs.WorkflowRun` objects
share about one batch. It observes each item's :class:`~invokeai_client.runs._state.ItemState`
(counts, readers, settling), and asks its :class:`BatchOwner` for what needs I/O: a REST read,
a cancel, the limiter's release.

Memory: an unsettled item's state is held here (and by the router); once settled, only its
result is kept (the run objects showing it hold the state): a finished batch and its items
are freed by reference counting (never by the cycle collector), and an item nobody shows
any more is rebuilt from its result.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._shape import BatchShape
from ._state import EventSink, ItemState

if TYPE_CHECKING:
    from .._router import EventRouter
    from ..types.queue import EnqueueBatchResult
    from .results import WorkflowResult

__all__ = ["MAX_STRANGERS", "BatchOwner", "BatchTracker"]

_NONE: frozenset[int] = frozenset()
_NO_RESULTS: Mapping[int, Any] = MappingProxyType({})
_NO_KEY = object()

MAX_STRANGERS = 16
"""Unnamed items of one batch id looked at beyond two per item the batch asked for (two
replays of the enqueue): a bound on what a hostile server can make the client read."""


class BatchOwner(Protocol):
    """What a batch asks of the runs machinery (the I/O side)."""

    def check_soon(self, state: ItemState) -> None:
        """Read ``state``'s item over REST shortly."""

    def stranger(self, batch: BatchTracker, item_id: int) -> None:
        """Read item ``item_id`` of ``batch``'s id (not in its enqueue answer); end it and
        note it in ``batch.copies`` when it is a copy, not a retry."""

    def item_settled(self, batch: BatchTracker) -> None:
        """One more item of ``batch`` has its result (the limiter may release a slot)."""

    def batch_done(self, batch: BatchTracker) -> None:
        """Every item of ``batch`` has its result: stop tracking it."""

    def cancel_item(self, state: ItemState) -> Awaitable[str]:
        """Cancel the item on the server and apply the answer; the status it reported."""

    def cancel_item_shielded(self, state: ItemState) -> Awaitable[tuple[bool, str]]:
        """Cancel the item even if the caller is being cancelled (bounded in time): whether
        the server confirmed, and what happened in words."""

    def cancel_batch(self, batch: BatchTracker) -> Awaitable[int]:
        """Cancel every pending or running item of ``batch``; the server's count."""

    def cancel_batch_shielded(self, batch: BatchTracker) -> Awaitable[tuple[bool, str]]:
        """Cancel ``batch`` even if the caller is being cancelled (bounded in time)."""

    def retry_item(self, item_id: int, *, detach: bool) -> Awaitable[tuple[BatchTracker, int]]:
        """Run a failed or canceled item again; the new item's batch and id."""


class BatchTracker(BatchShape):
    """The items of one enqueue call (or one attached item); see the module doc. It is its
    items' :class:`BatchShape` too (one object per batch, what each item's state reads)."""

    __slots__ = (
        "__weakref__",
        "_change",
        "_counts",
        "_ended",
        "_results",
        "_view",
        "_view_key",
        "copies",
        "destination",
        "detached",
        "expected",
        "finished",
        "gap",
        "held",
        "item_waiters",
        "key",
        "listeners",
        "origin",
        "owner",
        "priority",
        "router",
        "states",
        "strangers",
        "views",
        "waiters",
    )

    def __init__(
        self,
        owner: BatchOwner,
        router: EventRouter,
        batch_id: str,
        *,
        expected: int,
        origin: str | None = None,
        destination: str | None = None,
        detached: bool = False,
        gap: bool = False,
        **shape: Any,
    ) -> None:
        BatchShape.__init__(self, batch_id, **shape)  # see BatchShape for ``shape``'s names
        self.owner = owner
        self.router = router
        self.key = self.batch_id  # the registry's key (an attached item's is its own)
        self.expected = expected
        self.origin = origin
        self.destination = destination
        self.detached = detached
        self.priority = 0
        self.gap = gap  # events until the reconnect are lost
        self.held = 0  # limiter slots this batch holds
        self.states: dict[int, ItemState] = {}  # unsettled items
        # Results (not states) in the order they settled: no reference cycle here. The
        # containers below start as shared empties (a batch in flight holds none of them).
        self.finished: Sequence[WorkflowResult] = ()
        self._results: Mapping[int, WorkflowResult] = _NO_RESULTS
        self._counts: dict[str, int] = {}
        self._change: asyncio.Future[None] | None = None
        self.listeners: Sequence[EventSink] = ()  # readers of the whole batch
        # Item ids of this batch id the enqueue answer did not name (see stranger()), and
        # those the server confirmed are copies of it (a replayed enqueue).
        self.strangers: set[int] | frozenset[int] = _NONE  # a set once there is one
        self.copies: Sequence[int] = ()
        self.item_waiters: dict[int, list[asyncio.Future[None]]] | None = None
        self.waiters = 0  # tasks waiting on the whole batch
        # The public objects showing this batch and its items, held weakly (one per key
        # while anyone holds it): "batch" and item ids. The first in two slots, the others
        # in ``views``.
        self._view_key: Any = _NO_KEY
        self._view: weakref.ref[Any] | None = None
        self.views: dict[Any, weakref.ref[Any]] | None = None
        self._ended = False

    def __repr__(self) -> str:
        return f"<BatchTracker {self.batch_id!r} {len(self.finished)}/{self.expected}>"

    @property
    def done(self) -> bool:
        """Whether every item has its final result."""
        return self.confirmed and len(self.finished) >= self.expected

    @property
    def counts(self) -> dict[str, int]:
        return self._counts

    # -- items ---------------------------------------------------------------------------

    def _new_state(self, item_id: int) -> ItemState:
        state = self.states[item_id] = ItemState(item_id, self, self, gap=self.gap)
        self.moved(None, "pending")
        return state

    def adopt(self, item_id: int) -> ItemState | None:
        """An item of this batch seen on the socket before the enqueue answer."""
        if self.confirmed:
            self.stranger(item_id)  # a retry of one of ours, or a copy of the batch
            return None
        state = self.states.get(item_id)
        if state is None:
            if len(self.states) >= self.expected:
                # More items than the batch asked for: not all of them are ours. Keep none
                # beyond that; the enqueue answer names the real ones, read over REST then.
                self.gap = True
                if len(self.strangers) < self._stranger_room():
                    self._keep_stranger(item_id)  # told apart at confirm()
                return None
            state = self._new_state(item_id)
        return state

    def _keep_stranger(self, item_id: int) -> None:
        if not self.strangers:
            self.strangers = set()
        assert isinstance(self.strangers, set)
        self.strangers.add(item_id)

    def _stranger_room(self) -> int:
        return 2 * self.expected + MAX_STRANGERS

    def stranger(self, item_id: int) -> None:
        """An item with this batch's id that its enqueue answer did not name: a retry of one
        of its items, or a copy of the whole batch (a proxy that replayed the enqueue). The
        owner reads it and ends a copy; an attached item's batch is not ours to judge."""
        if self.key != self.batch_id or not self.confirmed:
            return
        if item_id in self.strangers or len(self.strangers) >= self._stranger_room():
            return
        self._keep_stranger(item_id)
        self.owner.stranger(self, item_id)

    def confirm(self, answer: EnqueueBatchResult) -> None:
        """The enqueue answer (or its REST reconstruction): learn every item id."""
        ids = answer.item_ids
        if len(ids) > 1:
            ids = sorted(ids)
        self.priority = answer.priority
        self.expected = len(ids) if ids else answer.enqueued
        unconfirmed, self.strangers = set(self.strangers), _NONE
        states, router, batch_id = self.states, self.router, self.batch_id
        if not ids:
            unconfirmed.clear()
        elif states or unconfirmed:  # states of items the server did not name are phantoms
            confirmed = set(ids)
            for item_id, phantom in list(states.items()):
                if item_id not in confirmed:
                    del states[item_id]
                    router.remove_item(item_id, phantom)
                    self._counts[phantom.status] -= 1
                    unconfirmed.add(item_id)
            unconfirmed -= confirmed
        for index, item_id in enumerate(ids):
            state = states.get(item_id) or self._new_state(item_id)
            state.index = index
            router.add_item(item_id, batch_id, state)
        self.confirmed = True
        for item_id in sorted(unconfirmed):
            self.stranger(item_id)
        for state in list(states.values()):
            if self.gap and state.result is None:
                # The socket dropped while the enqueue was in flight: events may be lost.
                self.owner.check_soon(state)
            state.finish_if_told()
        if self.done:
            self._all_settled()

    def state(self, item_id: int) -> ItemState:
        """The state of item ``item_id``; a settled one is rebuilt from its result (whoever
        still shows it holds its own)."""
        state = self.states.get(item_id)
        if state is not None:
            return state
        state = ItemState(item_id, self, self)
        state.restore(self._results[item_id], self.item_ids().index(item_id))
        return state

    def has_item(self, item_id: int) -> bool:
        return item_id in self.states or item_id in self._results

    def first_item(self) -> int:
        """The id of the first item (the only one, for a one-item batch)."""
        for item_id in self.states:
            return item_id
        return min(self._results)

    def item_ids(self) -> list[int]:
        """Every item id of the batch, ascending (submission order)."""
        return sorted({*self.states, *self._results})

    def unsettled(self) -> list[ItemState]:
        return [state for state in self.states.values() if state.result is None]

    def view(self, key: Any) -> Any:
        """The live view stored under ``key`` (None if there is none)."""
        if key == self._view_key:
            ref = self._view
        else:
            views = self.views
            ref = views.get(key) if views is not None else None
        return ref() if ref is not None else None

    def keep_view(self, key: Any, view: Any) -> None:
        ref = weakref.ref(view)
        if self._view is None or key == self._view_key:
            self._view_key, self._view = key, ref
            return
        views = self.views
        if views is None:
            views = self.views = {}
        views[key] = ref

    # -- waiters of one item -------------------------------------------------------------

    def add_item_waiter(self, item_id: int, waiter: asyncio.Future[None]) -> None:
        """``waiter`` gets its result when item ``item_id`` settles."""
        waiting = self.item_waiters
        if waiting is None:
            waiting = self.item_waiters = {}
        waiting.setdefault(item_id, []).append(waiter)

    def item_waiting(self, item_id: int) -> list[asyncio.Future[None]] | None:
        """The futures of the tasks awaiting item ``item_id`` (None: nobody waits)."""
        waiting = self.item_waiters
        return waiting.get(item_id) if waiting is not None else None

    def forget_item_waiter(self, item_id: int, waiter: asyncio.Future[None]) -> None:
        waiters = self.item_waiting(item_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                assert self.item_waiters is not None
                del self.item_waiters[item_id]

    def note_copy(self, item_id: int) -> int:
        """Item ``item_id`` is a copy of this batch; how many are known now."""
        self.copies = [*self.copies, item_id]
        return len(self.copies)

    def add_listener(self, sink: EventSink) -> None:
        """``sink`` reads the events of every item (until the batch ends)."""
        self.listeners = [*self.listeners, sink]

    def remove_listener(self, sink: EventSink) -> None:
        self.listeners = [other for other in self.listeners if other is not sink]

    # -- ItemObserver --------------------------------------------------------------------

    def moved(self, previous: str | None, status: str) -> None:
        counts = self._counts
        if previous is not None:
            counts[previous] = counts.get(previous, 0) - 1
        counts[status] = counts.get(status, 0) + 1

    def check_rest(self, state: ItemState) -> None:
        self.owner.check_soon(state)

    def settled(self, state: ItemState, result: WorkflowResult) -> None:
        item_id = state.item_id
        finished, results = self.finished, self._results
        if isinstance(finished, list):
            finished.append(result)
        else:
            self.finished = [result]
        if isinstance(results, dict):
            results[item_id] = result
        else:
            self._results = {item_id: result}
        if self.states.get(item_id) is state:
            del self.states[item_id]
        self.router.remove_item(item_id, state)  # later frames of it are ignored
        waiting = self.item_waiters
        if waiting is not None:
            for waiter in waiting.pop(item_id, ()):
                if not waiter.done():
                    waiter.set_result(None)
        self.owner.item_settled(self)
        self._wake()
        if self.done:
            self._all_settled()

    # -- waiting -------------------------------------------------------------------------

    def _wake(self) -> None:
        change = self._change
        if change is not None and not change.done():
            change.set_result(None)

    async def wait_change(self) -> None:
        """Wait until another item settles (or the batch ends)."""
        change = self._change
        if change is None or change.done():
            change = self._change = asyncio.get_running_loop().create_future()
        await asyncio.shield(change)

    def _all_settled(self) -> None:
        if self._ended:
            return  # confirm() and the last settle may both get here
        self._ended = True
        listeners, self.listeners = self.listeners, ()
        for sink in listeners:
            sink.close()
        self._wake()
        self.owner.batch_done(self)
