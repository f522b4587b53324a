"""The event router: one socket's events, demultiplexed to many subscribers in O(1).

Routing is synchronous and never awaits: the socket handler calls :meth:`EventRouter.dispatch`
with a parsed event, which looks the subscriber up by ``batch_id`` (and ``item_id``) in dicts
and appends to its mailbox. Interest is registered before an enqueue (the client chooses the
``batch_id``); events for batch ids nobody has claimed yet are kept for a short while in an
orphan buffer and handed over when the subscriber registers. Repeats are dropped, and so are
``user_id: "redacted"`` companions sent to other users in multi-user mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any

from .models.events import (
    BatchEnqueuedEvent,
    InvocationEvent,
    InvocationProgressEvent,
    QueueItemEvent,
    QueueItemStatusChangedEvent,
    ServerEvent,
)

log = logging.getLogger("invokeai_client")

ORPHAN_TTL = 60.0
"""Seconds an event for an unclaimed batch id is kept."""
ORPHAN_MAX_EVENTS = 10_000
"""Events kept for unclaimed batch ids at most, oldest dropped first."""
MAILBOX_PROGRESS_LIMIT = 64
"""Progress events a slow subscriber may have waiting before older ones are coalesced."""


def dedupe_key(event: ServerEvent) -> Hashable | None:
    """The identity of an event for dropping repeats (6.13 sends many events twice)."""
    if isinstance(event, QueueItemStatusChangedEvent):
        return ("status", event.item_id, event.status, event.status_sequence)
    if isinstance(event, InvocationProgressEvent):
        return None  # progress repeats are harmless and frequent; coalescing handles them
    if isinstance(event, InvocationEvent):
        return (event.event, event.item_id, event.prepared_id)
    if isinstance(event, BatchEnqueuedEvent):
        return ("batch_enqueued", event.batch_id)
    return None


class Subscription:
    """A mailbox of the events of one batch (or one item), read by one consumer.

    Terminal and status events are never dropped. When the consumer is slow, progress events
    beyond :data:`MAILBOX_PROGRESS_LIMIT` are coalesced (the oldest progress is dropped) so a
    slow reader never makes the socket or other subscribers wait.
    """

    __slots__ = ("_closed", "_events", "_progress", "_router", "_seen", "_waiter", "dropped",
                 "keys")

    def __init__(self, router: EventRouter, keys: list[tuple[str, Any]]) -> None:
        self._router = router
        self.keys: list[tuple[str, Any]] = keys
        self._events: deque[ServerEvent] = deque()
        self._progress = 0
        self._waiter: asyncio.Future[None] | None = None
        self._seen: set[Hashable] = set()
        self._closed = False
        self.dropped = 0

    def push(self, event: ServerEvent) -> None:
        """Deliver one event (synchronous, never blocks)."""
        if self._closed:
            return
        key = dedupe_key(event)
        if key is not None:
            if key in self._seen:
                return
            self._seen.add(key)
        if isinstance(event, InvocationProgressEvent):
            if self._progress >= MAILBOX_PROGRESS_LIMIT:
                self._drop_oldest_progress()
            self._progress += 1
        self._events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop_oldest_progress(self) -> None:
        for index, queued in enumerate(self._events):
            if isinstance(queued, InvocationProgressEvent):
                del self._events[index]
                self._progress -= 1
                self.dropped += 1
                return

    def get_nowait(self) -> ServerEvent | None:
        """The next event, or None when the mailbox is empty."""
        if not self._events:
            return None
        event = self._events.popleft()
        if isinstance(event, InvocationProgressEvent):
            self._progress -= 1
        return event

    async def get(self, timeout: float | None = None) -> ServerEvent | None:
        """Wait for the next event; None when ``timeout`` passes or the mailbox is closed."""
        event = self.get_nowait()
        if event is not None or self._closed:
            return event
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        try:
            if timeout is None:
                await self._waiter
            else:
                await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._waiter = None
        return self.get_nowait()

    def wake(self) -> None:
        """Wake the consumer without an event (e.g. after a reconnect, to re-check REST)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop receiving; the router forgets this subscription."""
        if self._closed:
            return
        self._closed = True
        self._router._forget(self)
        self.wake()


class EventRouter:
    """Routes parsed events to subscriptions by ``batch_id`` / ``item_id``; see module doc."""

    def __init__(self) -> None:
        self._by_batch: dict[str, Subscription] = {}
        self._by_item: dict[int, Subscription] = {}
        self._orphans: OrderedDict[str, list[tuple[float, ServerEvent]]] = OrderedDict()
        self._orphan_count = 0
        self._listeners: list[Callable[[ServerEvent], None]] = []
        self.routed = 0
        self.ignored = 0

    # -- registration --------------------------------------------------------------------

    def subscribe(
        self, *, batch_id: str | None = None, item_ids: tuple[int, ...] = ()
    ) -> Subscription:
        """Register interest in a batch and/or items; buffered early events are handed over."""
        keys: list[tuple[str, Any]] = []
        sub = Subscription(self, keys)
        if batch_id is not None:
            if batch_id in self._by_batch:
                raise ValueError(f"batch {batch_id} already has a subscriber")
            self._by_batch[batch_id] = sub
            keys.append(("batch", batch_id))
            for _, event in self._orphans.pop(batch_id, ()):
                self._orphan_count -= 1
                sub.push(event)
        for item_id in item_ids:
            self.add_item(sub, item_id)
        return sub

    def add_item(self, sub: Subscription, item_id: int) -> None:
        """Route events of ``item_id`` to ``sub`` too (items learned after enqueue)."""
        self._by_item[item_id] = sub
        sub.keys.append(("item", item_id))

    def _forget(self, sub: Subscription) -> None:
        for key in sub.keys:
            kind, value = key
            if kind == "batch":
                if self._by_batch.get(value) is sub:
                    del self._by_batch[value]
            elif self._by_item.get(value) is sub:
                del self._by_item[value]

    def add_listener(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Call ``listener`` (synchronously) for every event; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    @property
    def subscriptions(self) -> list[Subscription]:
        """Every live subscription (each once)."""
        seen: dict[int, Subscription] = {}
        for sub in (*self._by_batch.values(), *self._by_item.values()):
            seen[id(sub)] = sub
        return list(seen.values())

    # -- routing -------------------------------------------------------------------------

    def dispatch(self, event: ServerEvent) -> None:
        """Route one event; O(1), synchronous, never raises."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a user's listener must not break routing
                log.exception("event listener failed")
        if isinstance(event, (QueueItemEvent, BatchEnqueuedEvent)):
            if event.is_redacted:
                self.ignored += 1
                return
            sub = None
            if isinstance(event, QueueItemEvent):
                sub = self._by_item.get(event.item_id)
            if sub is None:
                sub = self._by_batch.get(event.batch_id)
            if sub is not None:
                self.routed += 1
                sub.push(event)
            else:
                self._keep_orphan(event.batch_id, event)

    def broadcast(self, event: ServerEvent) -> None:
        """Deliver an event to every subscription (bulk cancels, queue cleared)."""
        for sub in self.subscriptions:
            sub.push(event)

    def wake_all(self) -> None:
        for sub in self.subscriptions:
            sub.wake()

    def _keep_orphan(self, batch_id: str, event: ServerEvent) -> None:
        now = time.monotonic()
        self._expire_orphans(now)
        self._orphans.setdefault(batch_id, []).append((now, event))
        self._orphan_count += 1

    def _expire_orphans(self, now: float) -> None:
        while self._orphans:
            batch_id, events = next(iter(self._orphans.items()))
            if now - events[-1][0] < ORPHAN_TTL and self._orphan_count < ORPHAN_MAX_EVENTS:
                break
            del self._orphans[batch_id]
            self._orphan_count -= len(events)

    def stats(self) -> dict[str, Any]:
        return {
            "subscriptions": len(self.subscriptions),
            "orphan_batches": len(self._orphans),
            "orphan_events": self._orphan_count,
            "routed": self.routed,
            "ignored": self.ignored,
        }
