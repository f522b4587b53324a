"""Truth from REST: reading the queue items of runs whose socket story is incomplete.

One background task per client (started with the first run) reads, in bulk, the items of
runs that went quiet, of every run after a reconnect or a ``queue_cleared``, and of any run
whose events left a question open (:meth:`Reconciler.check_soon`). Cheap status summaries
first; full items only for those that ended. What REST says goes to each item's
:class:`~invokeai_client.runs._state.ItemState`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .. import errors
from ._recovery import SUMMARY_CHUNK, item_statuses
from ._state import TERMINAL, ItemState

if TYPE_CHECKING:
    from ..repositories.queue import QueueRepository
    from ._tracker import BatchTracker

log = logging.getLogger("invokeai_client")

__all__ = ["POLL_INTERVAL", "QUIET_AFTER", "UNREACHABLE_AFTER", "Reconciler"]

QUIET_AFTER = 30.0
"""A run that heard nothing for this long is read over REST (socket up)."""
POLL_INTERVAL = 1.0
"""Seconds between REST reads of every run while the socket is down (or off)."""
UNREACHABLE_AFTER = 300.0
"""Seconds the server may stay unreachable (socket down, every REST read failing) before the
runs in flight end as ``lost`` with one clear error, so ``await run`` always ends."""
FULL_ITEM_CHUNK = 100
"""Full queue items read in one request."""


class Reconciler:
    """Keeps every run of one client honest against REST; see the module doc."""

    def __init__(
        self,
        queue: QueueRepository,
        batches: Mapping[str, BatchTracker],
        connected: Callable[[], bool],
        *,
        where: str = "the server",
    ) -> None:
        self._queue = queue
        self._batches = batches  # the runs in flight (owned by the hub)
        self._connected = connected
        self._dirty: set[ItemState] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopped = False
        self.quiet_after = QUIET_AFTER
        self.poll_interval = POLL_INTERVAL
        self.unreachable_after = UNREACHABLE_AFTER
        self._unreachable_since: float | None = None
        self._where = where
        self.rest_checks = 0

    # -- what to read --------------------------------------------------------------------

    def check_soon(self, state: ItemState) -> None:
        """Read ``state``'s item over REST shortly."""
        self._dirty.add(state)
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def on_disconnect(self) -> None:
        """Events sent while the socket is down are lost for good: whatever runs now may
        only settle from REST."""
        for batch in self._batches.values():
            if not batch.confirmed:
                batch.gap = True
            for state in batch.states.values():
                state.gap = True
        self._poke()

    async def on_reconnect(self) -> None:
        """Events are not replayed after a reconnect: read every run in flight over REST."""
        self._unreachable_since = None
        self.on_queue_cleared()

    def on_queue_cleared(self) -> None:
        for batch in self._batches.values():
            if batch.confirmed:
                self._dirty.update(batch.unsettled())
        self._poke()

    # -- the background task -------------------------------------------------------------

    def start(self) -> None:
        """Start the background task unless it runs."""
        if self._task is None or self._task.done():
            self._stopped = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name="invokeai-client runs"
            )

    async def stop(self) -> None:
        # The flag too: asyncio.wait_for (3.11) can swallow a cancel that meets a timeout.
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._dirty.clear()

    async def _supervise(self) -> None:
        wake = self._wake
        assert wake is not None
        backoff = 0.0
        while not self._stopped:
            connected = self._connected()
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
                await self.reconcile(due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(5.0, max(0.25, backoff * 2))
                log.info("REST catch-up of %d runs failed (%s); retrying in %.1fs",
                         len(due), exc, backoff)
                self._dirty.update(state for state in due if state.result is None)
                self._note_unreachable(exc)
            else:
                backoff = 0.0
                self._unreachable_since = None

    def _note_unreachable(self, exc: Exception) -> None:
        """Count how long the server has been out of reach; past :attr:`unreachable_after`,
        end every run in flight as ``lost`` (logged once)."""
        unreachable = (errors.ConnectionError, errors.TimeoutError, errors.InternalServerError)
        if not isinstance(exc, unreachable) or self._connected():
            self._unreachable_since = None
            return
        now = time.monotonic()
        since = self._unreachable_since
        if since is None:
            self._unreachable_since = now
            return
        if now - since < self.unreachable_after:
            return
        states = [s for b in self._batches.values() if b.confirmed for s in b.unsettled()]
        log.error("InvokeAI at %s has been unreachable for %.0f s (%s); ending %d runs in "
                  "flight as lost", self._where, now - since, exc, len(states))
        for state in states:
            state.end_locally("lost", (
                f"InvokeAI at {self._where} was unreachable for {now - since:.0f} s "
                f"(last error: {exc}); the outcome of queue item {state.item_id} is unknown"
            ))
        self._unreachable_since = None

    def _due(self, connected: bool) -> set[ItemState]:
        due = {state for state in self._dirty if state.result is None}
        self._dirty.clear()
        quiet = self.quiet_after if connected else self.poll_interval
        horizon = time.monotonic() - quiet
        for batch in self._batches.values():
            if not batch.confirmed:
                continue
            for state in batch.states.values():
                if state.result is None and state.heard <= horizon:
                    due.add(state)
        return due

    async def reconcile(self, states: Iterable[ItemState]) -> None:
        """Read the given items over REST and settle or update their states."""
        by_id = {state.item_id: state for state in states if state.result is None}
        # Items the socket already saw end only need their full item; the rest get a cheap
        # status check first.
        finished = [state for state in by_id.values() if state.status in TERMINAL]
        ids = sorted(i for i, state in by_id.items() if state.status not in TERMINAL)
        for start in range(0, len(ids), SUMMARY_CHUNK):
            chunk = ids[start : start + SUMMARY_CHUNK]
            self.rest_checks += 1
            statuses = await item_statuses(self._queue, chunk)
            for item_id in chunk:
                state = by_id[item_id]
                known = statuses.get(item_id)
                if known is None:
                    state.lose(f"the server no longer has queue item {item_id}")
                elif known[1] != state.batch.batch_id:
                    state.lose(f"queue item {item_id} now belongs to another batch")
                elif known[0] in TERMINAL:
                    finished.append(state)
                else:
                    state.apply_status(known[0])
        for start in range(0, len(finished), FULL_ITEM_CHUNK):
            chunk_states = finished[start : start + FULL_ITEM_CHUNK]
            items = {
                item.item_id: item
                for item in await self._queue.get_many([s.item_id for s in chunk_states])
            }
            for state in chunk_states:
                item = items.get(state.item_id)
                if item is None:
                    state.lose(f"the server no longer has queue item {state.item_id}")
                else:
                    state.apply_item(item)
