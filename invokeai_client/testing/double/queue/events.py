"""The queue's events: built once, sent to the right rooms (owner, admins, the sanitized
companions of multi-user mode), through the event faults (late, doubled, shuffled, silent,
dropped sockets)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engineio.packet import MESSAGE as _EIO_MESSAGE
from engineio.packet import Packet as _EioPacket

if TYPE_CHECKING:
    from ..app import DoubleApp
    from .state import Item, QueueState

Held = tuple[str, dict[str, Any], Any, tuple[str, ...]]
"""An event not sent yet: (name, payload, room, sids to skip)."""


def item_event(item: Item) -> dict[str, Any]:
    """What every event about one queue item starts with (InvokeAI's QueueItemEventBase)."""
    plan = item.plan
    return {
        "timestamp": int(time.time()),
        "queue_id": item.queue_id,
        "item_id": item.item_id,
        "batch_id": plan.batch_id,
        "origin": plan.origin,
        "destination": plan.destination,
        "user_id": item.user_id,
    }


class QueueEvents:
    """Sends the queue's events for one double (``double.queue.events_sent`` counts them)."""

    def __init__(self, double: DoubleApp, state: QueueState) -> None:
        self.double = double
        self.state = state
        self.events_sent = 0
        self._held: dict[int, list[Held]] = {}
        self._delayed: deque[tuple[float, str, dict[str, Any], Any, tuple[str, ...]]] = deque()
        self._delayed_wake = asyncio.Event()
        self._events_since_drop = 0
        self._rng = random.Random()

    def start(self) -> list[asyncio.Task[None]]:
        """Start late delivery and periodic socket drops (stopped with the double)."""
        self._delayed_wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        return [
            loop.create_task(self.deliver_delayed(), name="invokeai-double-late-events"),
            loop.create_task(self.drop_periodically(), name="invokeai-double-socket-drops"),
        ]

    def hold(self, item: Item) -> None:
        """Hold ``item``'s events until :meth:`release_held` (``shuffle_item_events``)."""
        self._held[item.item_id] = []

    async def flush_late_events(self) -> int:
        """Send every event held back by :attr:`QueueFaults.event_delay` now; returns how
        many (so a test can release late events exactly when it wants)."""
        count = 0
        while self._delayed:
            _, event, payload, room, skip = self._delayed.popleft()
            await self.send(event, payload, room, skip)
            if self.state.faults.duplicate_events:
                await self.send(event, payload, room, skip)
            count += 1
        return count

    async def send(self, event: str, payload: dict[str, Any], room: Any,
                   skip: tuple[str, ...] = ()) -> None:
        """Hand one event to every socket in ``room``: encoded once, queued in order."""
        sio = self.double.sio
        try:
            recipients = [
                eio_sid for sid, eio_sid in sio.manager.get_participants("/", room)
                if sid not in skip
            ]
        except AttributeError:  # another python-socketio: the slow, sure way
            await sio.emit(event, payload, room=room, skip_sid=list(skip) or None)
            recipients = []
        if recipients:
            # A Socket.IO EVENT packet of namespace "/" is "2" + the JSON array: what
            # socketio.packet.Packet.encode makes, minus its costly walk looking for bytes.
            packet = _EioPacket(_EIO_MESSAGE, "2" + json.dumps([event, payload],
                                                               separators=(",", ":")))
            for eio_sid in recipients:
                await sio.eio.send_packet(eio_sid, packet)
        self.events_sent += 1
        limit = self.state.faults.drop_sockets_after_events
        if limit:
            self._events_since_drop += 1
            if self._events_since_drop >= limit:
                self._events_since_drop = 0
                await self.double.drop_sockets()

    async def emit(self, event: str, payload: dict[str, Any], room: Any,
                   skip: tuple[str, ...] = (), item: Item | None = None) -> None:
        faults = self.state.faults
        if faults.silent_events:
            return
        if item is not None and item.item_id in self._held:
            self._held[item.item_id].append((event, payload, room, skip))
            return
        if faults.event_delay > 0:
            due = asyncio.get_running_loop().time() + faults.event_delay
            self._delayed.append((due, event, payload, room, skip))
            self._delayed_wake.set()
            return
        await self.send(event, payload, room, skip)
        if faults.duplicate_events:
            await self.send(event, payload, room, skip)

    async def deliver_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._delayed:
                self._delayed_wake.clear()
                await self._delayed_wake.wait()
                continue
            due, event, payload, room, skip = self._delayed[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._delayed.popleft()
            try:
                await self.send(event, payload, room, skip)
                if self.state.faults.duplicate_events:
                    await self.send(event, payload, room, skip)
            except Exception:  # a broken socket must not end late delivery
                continue

    async def drop_periodically(self) -> None:
        while True:
            interval = self.state.faults.drop_sockets_every
            if not interval:
                await asyncio.sleep(0.05)
                continue
            await asyncio.sleep(interval)
            if self.state.faults.drop_sockets_every:
                await self.double.drop_sockets()

    async def release_held(self, item: Item) -> None:
        held = self._held.pop(item.item_id, None)
        if not held:
            return
        seed = self.state.faults.seed
        rng = random.Random(seed) if seed is not None else self._rng
        rng.shuffle(held)
        for event, payload, room, skip in held:
            await self.emit(event, payload, room, skip)

    def admin_sids(self) -> set[str]:
        """Sockets in the admin room: every socket in single-user mode (all are "system")."""
        if not self.double.multiuser:
            return set(self.double.sockets)
        admins = {u["user_id"] for u in self.double.users.values() if u.get("is_admin")}
        return {sid for sid, info in self.double.sockets.items() if info["user_id"] in admins}

    def owner_and_admin_sids(self, owners: Iterable[str]) -> tuple[str, ...]:
        owner_set = set(owners)
        sids = self.admin_sids()
        sids.update(
            sid for sid, info in self.double.sockets.items() if info["user_id"] in owner_set
        )
        return tuple(sids)

    async def emit_private(self, event: str, payload: dict[str, Any], item: Item,
                           progress: bool = False) -> None:
        room: Any = f"user:{item.user_id}" if progress else [f"user:{item.user_id}", "admin"]
        await self.emit(event, payload, room, item=item)

    async def emit_status(self, item: Item) -> None:
        payload: dict[str, Any] = {
            **item_event(item),
            "status": item.status,
            "status_sequence": item.status_sequence,
            **item.outcome(),
            "batch_status": self.state.batch_status(item.queue_id, item.plan.batch_id),
            "queue_status": self.state.queue_status(
                item.queue_id, item.user_id, acting_user_id=item.user_id
            ),
            "session_id": item.session_id,
        }
        await self.emit_private("queue_item_status_changed", payload, item)
        if self.double.multiuser:
            companion = {
                **payload,
                "user_id": "redacted",
                "batch_id": "redacted",
                "session_id": "redacted",
                "origin": None,
                "destination": None,
                "error_type": None,
                "error_message": None,
                "error_traceback": None,
                "batch_status": {
                    **payload["batch_status"], "batch_id": "redacted", "origin": None,
                    "destination": None,
                },
                "queue_status": {
                    **payload["queue_status"], "item_id": None, "session_id": None,
                    "batch_id": None, "user_pending": None, "user_in_progress": None,
                },
            }
            skip = self.owner_and_admin_sids([item.user_id])
            await self.emit("queue_item_status_changed", companion, item.queue_id, skip, item)

    async def emit_bulk(self, event: str, queue_id: str, field_name: str,
                        by_user: dict[str, list[int]]) -> None:
        """queue_items_canceled / queue_items_retried, routed per owner like 6.14."""
        ids_field = f"{field_name}_item_ids"
        by_user_field = f"{field_name}_item_ids_by_user"
        base = {"timestamp": int(time.time()), "queue_id": queue_id}
        full = {
            **base,
            ids_field: [i for ids in by_user.values() for i in ids],
            "user_ids": list(by_user),
            by_user_field: by_user,
        }
        admin_sids = tuple(self.admin_sids())
        for user_id, ids in by_user.items():
            own = {**base, ids_field: ids, "user_ids": [user_id], by_user_field: {user_id: ids}}
            await self.emit(event, own, f"user:{user_id}", admin_sids)
        await self.emit(event, full, "admin")
        if self.double.multiuser:
            companion = {**base, ids_field: [], "user_ids": [], by_user_field: {}}
            await self.emit(event, companion, queue_id, self.owner_and_admin_sids(by_user))

    async def emit_batch_enqueued(self, queue_id: str, result: dict[str, Any],
                                  user_id: str) -> None:
        payload = {
            "timestamp": int(time.time()),
            "queue_id": queue_id,
            "batch_id": result["batch"]["batch_id"],
            "enqueued": result["enqueued"],
            "requested": result["requested"],
            "priority": result["priority"],
            "origin": result["batch"]["origin"],
            "user_id": user_id,
        }
        await self.emit("batch_enqueued", payload, [f"user:{user_id}", "admin"])
        if self.double.multiuser:
            companion = {**payload, "user_id": "redacted", "batch_id": "redacted", "origin": None}
            await self.emit("batch_enqueued", companion, queue_id,
                            self.owner_and_admin_sids([user_id]))
