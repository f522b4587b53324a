"""The queue's state: items, the pending heap per user, counts kept as items move, and the
status views computed from them. No I/O: routes, events and the processor act on it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..records import db_timestamp
from .cache import InvocationCache
from .faults import QueueFaults
from .plan import expand, session_count

if TYPE_CHECKING:
    from .plan import Plan
    from .session import Session

TERMINAL = frozenset({"completed", "failed", "canceled"})
STATUSES = ("pending", "in_progress", "waiting", "completed", "failed", "canceled")


@dataclass(slots=True, eq=False)
class Item:
    """One queue item; its graph is its batch's, with ``subs`` substituted."""

    item_id: int
    queue_id: str
    plan: Plan
    field_values: list[dict[str, Any]]
    subs: tuple[tuple[str, str, Any], ...]
    poison: str | None
    priority: int
    user_id: str
    created_at: str
    batch_key: tuple[str, str] = field(init=False)
    updated_at: str = field(init=False)
    session_id: str = field(init=False, default_factory=lambda: str(uuid.uuid4()))
    status: str = field(init=False, default="pending")
    status_sequence: int = field(init=False, default=0)
    started_at: str | None = field(init=False, default=None)
    completed_at: str | None = field(init=False, default=None)
    error_type: str | None = field(init=False, default=None)
    error_message: str | None = field(init=False, default=None)
    error_traceback: str | None = field(init=False, default=None)
    retried_from_item_id: int | None = field(init=False, default=None)
    device: str | None = field(init=False, default=None)
    session: Session | None = field(init=False, default=None)
    deleted: bool = field(init=False, default=False)
    cancel_seen: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.batch_key = (self.queue_id, self.plan.batch_id)
        self.updated_at = self.created_at

    def nodes(self) -> dict[str, dict[str, Any]]:
        """The item's graph nodes: its batch's, with its batch data substituted."""
        if not self.subs:
            return self.plan.nodes
        nodes = dict(self.plan.nodes)
        for node_path, field_name, value in self.subs:
            nodes[node_path] = {**nodes[node_path], field_name: value}
        return nodes

    def outcome(self) -> dict[str, Any]:
        """Its error and timestamps, as queue items and status events show them."""
        return {
            "error_type": self.error_type,
            "error_message": self.error_message,
            "error_traceback": self.error_traceback,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        }

    def graph_json(self) -> str:
        return json.dumps(self.plan.graph(self.nodes()), separators=(",", ":"))



def new_counts() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


class QueueState:
    """Every queue of one double: items by id, what is pending, counts, the running item, and
    the switches that steer them (faults, cache, ``paused``, ``max_queue_size``)."""

    def __init__(self) -> None:
        self.faults = QueueFaults()
        """The queue's fault switches (see :class:`QueueFaults`)."""
        self.cache = InvocationCache()
        """The invocation cache (on, 512 entries, like the server's default)."""
        self.max_queue_size = 10_000
        """Pending items a queue may hold; larger batches are cut (``enqueued < requested``)."""
        self.paused = False
        """Whether the processor is paused (what ``processor/pause`` sets)."""
        self.items: dict[int, Item] = {}
        self.running: Item | None = None
        self.wake_event = asyncio.Event()
        self._next_id = 1
        self._heaps: dict[str, list[tuple[int, int, Item]]] = {}
        self._served: dict[str, int] = {}
        self._serve_count = itertools.count()
        self._queue_counts: dict[str, dict[str, int]] = {}
        self._batch_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._batch_items: dict[tuple[str, str], dict[int, Item]] = {}
        self._user_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._dest_counts: dict[tuple[str, str | None], dict[str, int]] = {}
        self._pending_priorities: dict[str, Counter[int]] = {}

    def wake(self) -> None:
        """Make the processor look for work now (after changing a fault switch)."""
        self.wake_event.set()

    # -- counting ----------------------------------------------------------------------

    def _count(self, item: Item, status: str, delta: int) -> None:
        tables: tuple[tuple[dict[Any, dict[str, int]], Any], ...] = (
            (self._queue_counts, item.queue_id),
            (self._batch_counts, item.batch_key),
            (self._user_counts, (item.queue_id, item.user_id)),
            (self._dest_counts, (item.queue_id, item.plan.destination)),
        )
        for counts, key in tables:
            found = counts.get(key)
            if found is None:
                found = counts[key] = new_counts()
            found[status] += delta
        if status == "pending":
            priorities = self._pending_priorities.setdefault(item.queue_id, Counter())
            priorities[item.priority] += delta
            if priorities[item.priority] <= 0:
                del priorities[item.priority]

    def transition(self, item: Item, status: str) -> bool:
        """Move ``item`` to ``status`` unless it is finished; True when it moved."""
        if item.status in TERMINAL or item.deleted:
            return False
        now = db_timestamp()
        self._count(item, item.status, -1)
        item.status = status
        item.status_sequence += 1
        item.updated_at = now
        if status in TERMINAL:
            item.completed_at = now
        self._count(item, status, 1)
        return True

    @staticmethod
    def counts_dict(counts: dict[str, int] | None) -> dict[str, int]:
        counts = counts or new_counts()
        return {**counts, "total": sum(counts.values())}

    def batch_status(
        self, queue_id: str, batch_id: str, user_id: str | None = None
    ) -> dict[str, Any]:
        key = (queue_id, batch_id)
        items = self._batch_items.get(key, {})
        if user_id is None:
            counts = self.counts_dict(self._batch_counts.get(key))
        else:
            own = new_counts()
            for item in items.values():
                if item.user_id == user_id:
                    own[item.status] += 1
            counts = self.counts_dict(own)
        first = next(iter(items.values()), None)
        return {
            "queue_id": queue_id,
            "batch_id": batch_id,
            "origin": first.plan.origin if first is not None else None,
            "destination": first.plan.destination if first is not None else None,
            **counts,
        }

    def queue_status(
        self, queue_id: str, user_id: str | None, *, acting_user_id: str | None = None,
        is_admin: bool = False,
    ) -> dict[str, Any]:
        current = self.running
        if current is None or current.queue_id != queue_id or current.status != "in_progress":
            current = None
        owner = acting_user_id if acting_user_id is not None else user_id
        visible = current is not None and (is_admin or owner is None or current.user_id == owner)
        status: dict[str, Any] = {
            "queue_id": queue_id,
            "item_id": current.item_id if visible and current else None,
            "batch_id": current.plan.batch_id if visible and current else None,
            "session_id": current.session_id if visible and current else None,
            **self.counts_dict(self._queue_counts.get(queue_id)),
            "user_pending": None,
            "user_in_progress": None,
        }
        if user_id is not None:
            own = self._user_counts.get((queue_id, user_id)) or new_counts()
            status["user_pending"] = own["pending"]
            status["user_in_progress"] = own["in_progress"]
        return status

    def processor_status(self) -> dict[str, bool]:
        return {"is_started": not self.paused, "is_processing": self.running is not None}

    def destination_counts(self, queue_id: str, destination: str,
                           scope: str | None) -> dict[str, int]:
        """Counts by status of the items for ``destination`` (of ``scope``'s user, or all)."""
        if scope is None:
            return self.counts_dict(self._dest_counts.get((queue_id, destination)))
        own = new_counts()
        for item in self.queue_items(queue_id):
            if item.plan.destination == destination and item.user_id == scope:
                own[item.status] += 1
        return self.counts_dict(own)

    # -- items -------------------------------------------------------------------------

    def queue_items(self, queue_id: str) -> list[Item]:
        return [item for item in self.items.values() if item.queue_id == queue_id]

    def batch_items(self, queue_id: str, batch_id: str) -> list[Item]:
        return list(self._batch_items.get((queue_id, batch_id), {}).values())

    def current(self) -> Item | None:
        """The item being run, if it still is (a canceled one may still be finishing)."""
        running = self.running
        return running if running is not None and running.status == "in_progress" else None

    def room(self, queue_id: str) -> int:
        """How many more items may be pending in ``queue_id``."""
        pending = self._queue_counts.get(queue_id, {}).get("pending", 0)
        return max(self.max_queue_size - pending, 0)

    def enqueue(self, queue_id: str, plan: Plan, prepend: bool,
                user_id: str) -> dict[str, Any]:
        """Create the batch's items (at most :meth:`room` of them) and return InvokeAI's
        EnqueueBatchResult: ``item_ids`` descending, ``priority`` max+1 with ``prepend``."""
        room = self.room(queue_id)
        priority = 0
        if prepend:
            priorities = self._pending_priorities.get(queue_id)
            priority = (max(priorities) if priorities else 0) + 1
        sessions = expand(plan)
        requested = session_count(plan)
        created_at = db_timestamp()
        key = (queue_id, plan.batch_id)
        batch_items = self._batch_items.setdefault(key, {})
        heap = self._heaps.setdefault(user_id, [])
        new_ids: list[int] = []
        for field_values, subs, poison in itertools.islice(sessions, room):
            item = Item(self._next_id, queue_id, plan, field_values, subs, poison, priority,
                         user_id, created_at)
            self._next_id += 1
            self._add(item, heap, batch_items)
            new_ids.append(item.item_id)
        new_ids.reverse()
        self.wake()
        return {
            "queue_id": queue_id,
            "enqueued": len(new_ids),
            "requested": requested,
            "batch": plan.echo(),
            "priority": priority,
            "item_ids": new_ids,
        }

    def _add(self, item: Item, heap: list[tuple[int, int, Item]],
             batch_items: dict[int, Item]) -> None:
        self.items[item.item_id] = item
        batch_items[item.item_id] = item
        self._count(item, "pending", 1)
        heapq.heappush(heap, (-item.priority, item.item_id, item))

    def requeue(self, original: Item) -> Item:
        """A new pending item that runs ``original`` again (``retried_from_item_id`` set)."""
        new = Item(self._next_id, original.queue_id, original.plan, original.field_values,
                   original.subs, original.poison, original.priority, original.user_id,
                   db_timestamp())
        self._next_id += 1
        new.retried_from_item_id = original.retried_from_item_id or original.item_id
        self._add(new, self._heaps.setdefault(new.user_id, []),
                  self._batch_items.setdefault(new.batch_key, {}))
        return new

    def dequeue(self) -> Item | None:
        if self.paused or self.faults.stall_processor:
            return None
        best: tuple[int, int] | None = None
        best_user: str | None = None
        for user_id, heap in self._heaps.items():
            while heap and (heap[0][2].status != "pending" or heap[0][2].deleted):
                heapq.heappop(heap)
            if not heap:
                continue
            rank = (self._served.get(user_id, -1), heap[0][1])
            if best is None or rank < best:
                best, best_user = rank, user_id
        if best_user is None:
            return None
        item = self._heaps[best_user][0][2]
        if item.poison is not None:
            return None  # the real server fails to load it, again and again: the queue stalls
        heapq.heappop(self._heaps[best_user])
        self._served[best_user] = next(self._serve_count)
        return item

    def delete(self, item: Item) -> None:
        if item.deleted:
            return
        self._count(item, item.status, -1)
        item.deleted = True
        self.items.pop(item.item_id, None)
        batch_items = self._batch_items.get(item.batch_key)
        if batch_items is not None:
            batch_items.pop(item.item_id, None)
            if not batch_items:
                del self._batch_items[item.batch_key]
