"""The event router: one socket's events, demultiplexed to many runs in O(1).

Routing is synchronous and never awaits. The socket handler calls
:meth:`EventRouter.dispatch_raw` with each frame; the router looks its queue item up in a dict
by ``item_id`` (falling back to a dict by ``batch_id`` for items it has not met yet), drops
repeats with the item's filter (held in its :class:`ItemRoute`) and hands the raw payload to
the item's target (its run state) with a plain method call.
No pydantic model is built on this path; listeners registered with
:meth:`EventRouter.add_listener` get typed events.

- Interest is registered *before* an enqueue: the client chooses the ``batch_id``, so events
  that overtake the HTTP answer (``batch_enqueued`` is emitted inside the request) find their
  batch and are kept.
- Events for batch ids nobody has claimed yet wait a short while in a bounded orphan buffer
  and are handed over when the batch registers.
- Repeats are dropped per item: node events by ``(event, invocation id)``, progress when it
  repeats the last one (InvokeAI 6.13 sends many events twice). Statuses are ordered by the
  item's state, which also hears REST.
- ``user_id: "redacted"`` companions (other users' items, multi-user mode) are ignored.

Consumers never make routing wait: a run updates its own state synchronously, and readers of
event streams get bounded :class:`Mailbox` es (progress coalesces, nothing else drops).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from .types.wire_events import REDACTED, ServerEvent, UnknownEvent, parse_event

log = logging.getLogger("invokeai_client")

_NODE_EVENTS = frozenset({"invocation_started", "invocation_complete", "invocation_error"})
FILTERED = _NODE_EVENTS | {"invocation_progress"}
"""Frames that can repeat (the item's repeat filter, :meth:`ItemRoute.accept`, sees them)."""
_MODEL_LOADS = frozenset({"model_load_started", "model_load_complete"})
_ENDED = frozenset({"completed", "failed", "canceled"})

ORPHAN_TTL = 30.0
"""Seconds an event for an unclaimed batch id is kept (expired by a timer)."""
ORPHAN_MAX_EVENTS = 2_000
"""Events kept for unclaimed batch ids at most, oldest dropped first. In single-user mode every
socket hears every client's events, so this buffer mostly holds other people's traffic."""
ORPHAN_MAX_BYTES = 8 * 1024 * 1024
"""Approximate bytes of payload kept for unclaimed batch ids at most (progress images are
large), oldest dropped first."""
MAILBOX_PROGRESS_LIMIT = 64
"""Progress events a slow reader may have waiting before the oldest are coalesced away."""

T = TypeVar("T")


class FrameTarget(Protocol):
    """What gets the new frames of one queue item (its run state)."""

    def on_frame(self, name: str, data: dict[str, Any]) -> None:
        """One frame of this item that is not a repeat (raw payload)."""


class ItemRoute:
    """The router's entry for one queue item: its batch id, its target and its repeat filter.

    The filter keeps a few slots of state per item: node events repeat on ``(event,
    invocation id)``, progress when it equals the last one. Status changes pass; the item's
    state orders them by ``status_sequence`` (REST reports statuses too).
    """

    __slots__ = ("_last_progress", "_seen", "batch_id", "target")

    def __init__(self, batch_id: str, target: FrameTarget) -> None:
        self.batch_id = batch_id
        self.target = target
        self._seen: set[Hashable] | None = None
        self._last_progress: tuple[Any, ...] | None = None

    def accept(self, name: str, data: dict[str, Any]) -> bool:
        """Whether frame ``name`` is new for this item (False: a repeat, dropped). Only
        frames named in :data:`FILTERED` can repeat; the router asks only for those."""
        invocation = data.get("invocation")
        prepared = invocation.get("id") if isinstance(invocation, dict) else None
        if name == "invocation_progress":
            progress = (prepared, data.get("percentage"), data.get("message"))
            if progress == self._last_progress:
                return False
            self._last_progress = progress
            return True
        if name not in _NODE_EVENTS:
            return True
        key = (name, prepared)
        seen = self._seen
        if seen is None:
            self._seen = {key}
        elif key in seen:
            return False
        else:
            seen.add(key)
        return True


class BatchRoute(Protocol):
    """Where the router delivers what concerns a batch as a whole."""

    def adopt(self, item_id: int) -> FrameTarget | None:
        """An item of this batch the router has not met: its target, or None to ignore it."""


def approx_size(data: Any) -> int:
    """A cheap estimate of a payload's size in bytes: strings counted, everything else a few
    bytes each, walking at most :data:`_SIZE_WALK` values; a payload with more is counted as
    :data:`_SIZE_UNKNOWN` bytes (pessimistic, so an odd payload is dropped early)."""
    size = 0
    stack = [data]
    for _ in range(_SIZE_WALK):
        if not stack:
            return size
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, (dict, list)) and len(item) > _SIZE_WALK:
            return max(size, _SIZE_UNKNOWN)
        elif isinstance(item, dict):
            size += 8 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            size += 8 * len(item)
            stack.extend(item)
        else:
            size += 8
    return size if not stack else max(size, _SIZE_UNKNOWN)


_SIZE_WALK = 512
_SIZE_UNKNOWN = 1024 * 1024


class OrphanBuffer:
    """Frames of batch ids nobody here has claimed yet, in arrival order, bounded by count
    (:data:`ORPHAN_MAX_EVENTS`), bytes (:data:`ORPHAN_MAX_BYTES`) and age
    (:data:`ORPHAN_TTL`, expired by a timer on the running loop as well as on arrival)."""

    def __init__(
        self, *, max_events: int = ORPHAN_MAX_EVENTS, max_bytes: int = ORPHAN_MAX_BYTES,
        ttl: float = ORPHAN_TTL,
    ) -> None:
        self.max_events, self.max_bytes, self.ttl = max_events, max_bytes, ttl
        self._frames: deque[tuple[float, str, str, dict[str, Any], int]] = deque()
        self._per_batch: dict[str, int] = {}
        self.count = 0
        self.bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def batches(self) -> int:
        return len(self._per_batch)

    def keep(self, batch_id: str, name: str, data: dict[str, Any]) -> None:
        """Keep one frame of an unclaimed batch (dropping the oldest beyond the bounds)."""
        now = time.monotonic()
        size = approx_size(data)
        self._frames.append((now, batch_id, name, data, size))
        self._per_batch[batch_id] = self._per_batch.get(batch_id, 0) + 1
        self.count += 1
        self.bytes += size
        self.expire(now)
        self._arm_timer()

    def take(self, batch_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The kept frames of ``batch_id`` (now claimed), in arrival order."""
        if batch_id not in self._per_batch:
            return []
        del self._per_batch[batch_id]
        taken: list[tuple[str, dict[str, Any]]] = []
        kept: deque[tuple[float, str, str, dict[str, Any], int]] = deque()
        for frame in self._frames:
            if frame[1] == batch_id:
                taken.append((frame[2], frame[3]))
                self.count -= 1
                self.bytes -= frame[4]
            else:
                kept.append(frame)
        self._frames = kept
        return taken

    def expire(self, now: float) -> None:
        """Drop the oldest frames while over a bound or older than the TTL."""
        frames = self._frames
        while frames and (
            self.count > self.max_events or self.bytes > self.max_bytes
            or now - frames[0][0] >= self.ttl
        ):
            _, batch_id, _, _, size = frames.popleft()
            self.count -= 1
            self.bytes -= size
            left = self._per_batch[batch_id] - 1
            if left:
                self._per_batch[batch_id] = left
            else:
                del self._per_batch[batch_id]

    def _arm_timer(self) -> None:
        if self._timer is not None or not self._frames:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # routed outside a loop (tools, tests): expiry on arrival only
            return
        wait = max(0.05, self._frames[0][0] + self.ttl - time.monotonic())
        self._timer = loop.call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.expire(time.monotonic())
        self._arm_timer()

    def close(self) -> None:
        """Forget every frame and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._frames.clear()
        self._per_batch.clear()
        self.count = self.bytes = 0


class EventRouter:
    """Routes socket frames to item and batch routes by id; see the module doc."""

    def __init__(self) -> None:
        self._items: dict[int, ItemRoute] = {}
        self._batches: dict[str, BatchRoute] = {}
        self._orphans = OrphanBuffer()
        # Items whose nodes are executing right now (model loads name no item: see _route).
        self._executing: dict[Any, ItemRoute] = {}
        self._listeners: list[Callable[[ServerEvent], None]] = []
        self._on_wake: list[Callable[[], None]] = []
        self._on_cleared: list[Callable[[], None]] = []
        self.routed = 0
        self.repeats = 0
        self.ignored = 0

    # -- registration --------------------------------------------------------------------

    def add_batch(self, batch_id: str, route: BatchRoute) -> None:
        """Route frames of ``batch_id`` to ``route``; hands over any buffered early frames."""
        if batch_id in self._batches:
            raise ValueError(f"batch {batch_id} is already routed")
        self._batches[batch_id] = route
        for name, data in self._orphans.take(batch_id):
            self._route(name, data)

    def remove_batch(self, batch_id: str, route: BatchRoute | None = None) -> None:
        if route is None or self._batches.get(batch_id) is route:
            self._batches.pop(batch_id, None)

    def add_item(self, item_id: int, batch_id: str, target: FrameTarget) -> None:
        """Route new frames of queue item ``item_id`` (of ``batch_id``) to ``target``."""
        route = self._items.get(item_id)
        if route is None or route.target is not target or route.batch_id != batch_id:
            self._items[item_id] = ItemRoute(batch_id, target)

    def remove_item(self, item_id: int, target: FrameTarget | None = None) -> None:
        """Stop routing ``item_id`` (only if it still goes to ``target``, when given)."""
        route = self._items.get(item_id)
        if route is not None and (target is None or route.target is target):
            del self._items[item_id]
            self._executing.pop(item_id, None)

    def add_listener(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Call ``listener`` synchronously with every event, parsed; returns a remover.

        A listener must not block; an exception it raises is logged and routing goes on.
        While any listener is registered every frame is parsed, so keep them short-lived.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the connection drops (waiters may want to poll REST)."""
        self._on_wake.append(callback)

    def on_queue_cleared(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` for ``queue_cleared`` (items may vanish without their own event)."""
        self._on_cleared.append(callback)

    # -- routing -------------------------------------------------------------------------

    def dispatch_raw(self, name: str, data: Any = None) -> None:
        """Route one socket frame: O(1), synchronous, never raises.

        This is the socket's event handler. Routing reads the raw payload; only listeners
        (if any) get it parsed. In single-user mode every socket hears every client's
        events: frames of batches nobody here tracks cost a dict lookup and wait a short
        while, unparsed, in case their batch registers.
        """
        if self._listeners:
            self._notify(parse_event(name, data))
        if isinstance(data, dict):
            try:
                # The common case first: a frame of an item already known by its id.
                item_id: Any = data.get("item_id")
                route = self._items.get(item_id)
                if (
                    route is None
                    or route.batch_id != data.get("batch_id")
                    or route.batch_id == REDACTED
                    or data.get("user_id") == REDACTED
                ):
                    self._route(name, data)
                else:
                    self._deliver(route, item_id, name, data)
            except Exception:  # a bug in one run must not stop the stream
                log.exception("routing %s failed", name)

    def dispatch(self, event: ServerEvent) -> None:
        """Route one already parsed event (tools and tests inject events this way)."""
        self._notify(event)
        if isinstance(event, UnknownEvent):
            name, data = event.name, event.data
        else:
            name, data = event.event, event.model_dump(mode="json", by_alias=True)
        if isinstance(data, dict):
            try:
                self._route(name, data)
            except Exception:
                log.exception("routing %s failed", name)

    def _notify(self, event: ServerEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a user's listener must not break routing
                log.exception("event listener failed")

    def _route(self, name: str, data: dict[str, Any]) -> None:
        batch_id = data.get("batch_id")
        if batch_id is None:
            if name == "queue_items_canceled":
                for item_id in data.get("canceled_item_ids") or ():
                    route = self._items.get(item_id)
                    if route is not None:
                        route.target.on_frame(name, data)
            elif name == "queue_cleared":
                for callback in self._on_cleared:
                    callback()
            elif name in _MODEL_LOADS and len(self._executing) == 1:
                # InvokeAI runs one item per device at a time and names no item in model
                # events: the one item executing among ours is the one loading.
                route = next(iter(self._executing.values()))
                if data.get("user_id") != REDACTED:
                    route.target.on_frame(name, data)
            return
        if batch_id == REDACTED or data.get("user_id") == REDACTED:
            self.ignored += 1  # another user's item, sanitized: only a hint counts changed
            return
        item_id = data.get("item_id")
        if item_id is None:
            return  # batch_enqueued: the HTTP answer carries the same and more
        route = self._items.get(item_id)
        if route is not None and route.batch_id != batch_id:
            route = None  # an item id reused by a restarted server (in-memory database)
        if route is None:
            batch = self._batches.get(batch_id)
            if batch is None:
                if isinstance(batch_id, str):
                    self._orphans.keep(batch_id, name, data)
                return
            if not isinstance(item_id, int):
                self.ignored += 1
                return
            target = batch.adopt(item_id)
            if target is None:
                self.ignored += 1
                return
            route = self._items[item_id] = ItemRoute(batch_id, target)
        self._deliver(route, item_id, name, data)

    def _deliver(self, route: ItemRoute, item_id: Any, name: str, data: dict[str, Any]) -> None:
        if name in FILTERED and not route.accept(name, data):
            self.repeats += 1
            return
        self.routed += 1
        route.target.on_frame(name, data)
        if name == "invocation_started":
            self._executing[item_id] = route
        elif name == "queue_item_status_changed" and data.get("status") in _ENDED:
            self._executing.pop(item_id, None)

    def wake_all(self) -> None:
        """The connection dropped: tell whoever polls REST to look now."""
        for callback in self._on_wake:
            try:
                callback()
            except Exception:
                log.exception("wake callback failed")

    def close(self) -> None:
        """Forget buffered frames of unclaimed batches (the client closed)."""
        self._orphans.close()

    def stats(self) -> dict[str, Any]:
        """Counters for debugging: routes, orphans, routed, repeats and ignored events."""
        return {
            "items": len(self._items),
            "batches": len(self._batches),
            "orphan_batches": self._orphans.batches,
            "orphan_events": self._orphans.count,
            "orphan_bytes": self._orphans.bytes,
            "routed": self.routed,
            "repeats": self.repeats,
            "ignored": self.ignored,
        }


class Mailbox(Generic[T]):
    """A bounded buffer between a synchronous producer and one async reader.

    :meth:`put` never blocks. Items for which ``is_droppable`` is true (progress) are
    coalesced when more than ``limit`` of them wait: the oldest is dropped and counted in
    :attr:`dropped`. Everything else is always kept, so a slow reader never stalls the
    router and never loses a status or a result.
    """

    __slots__ = ("_closed", "_droppable", "_items", "_pending", "_waiter", "dropped", "limit")

    def __init__(
        self, is_droppable: Callable[[T], bool], limit: int = MAILBOX_PROGRESS_LIMIT
    ) -> None:
        self._items: deque[T] = deque()
        self._droppable = is_droppable
        self._pending = 0
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.limit = limit
        self.dropped = 0

    def put(self, item: T) -> None:
        """Add one item (synchronous, never blocks; ignored once closed)."""
        if self._closed:
            return
        if self._droppable(item):
            if self._pending >= self.limit:
                self._drop_oldest()
            self._pending += 1
        self._items.append(item)
        self._wake()

    def _drop_oldest(self) -> None:
        for index, queued in enumerate(self._items):
            if self._droppable(queued):
                del self._items[index]
                self._pending -= 1
                self.dropped += 1
                return

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """No more items; the reader drains what is left, then gets None."""
        self._closed = True
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def get_nowait(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        if self._droppable(item):
            self._pending -= 1
        return item

    async def get(self) -> T | None:
        """The next item; None once the mailbox is closed and drained."""
        while True:
            item = self.get_nowait()
            if item is not None or self._closed:
                return item
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
