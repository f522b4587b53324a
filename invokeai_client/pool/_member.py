"""One server of a pool: its client, whether it answers, its measured speed and queue room."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..client import AsyncClient
from ..runs._room import queue_limit
from .scheduler import ServerState

log = logging.getLogger("invokeai_client.pool")

RATE_WINDOW = 24
"""Completions the item rate is measured over."""

COUNTS_EVERY = 5.0
"""Seconds between queue-count probes of a server whose items keep ending (it is alive)."""

DOWN_PROBE_MAX = 5.0
"""Longest pause between probes of a server that is down (the pause doubles from the
probe interval): reopening a client costs far more than a status read."""


def learned_limit(known: int | None, pending: int, cut: int) -> int:
    """A safe underestimate of a queue limit the server does not tell (non-admin users of
    a multi-user server). Lower bounds only: a queue never holds more pending items than
    its limit, and a cut showed ``cut`` (our items waiting there then plus what still
    fitted). Never below 1: the pending count is read after the cut, when the queue may have
    drained, and a limit learned as 0 would leave the server looking full for good."""
    return max(known or 1, pending, cut, 1)


@dataclass
class Sent:
    """A variation on a server: the chunk's batch id and its item (None while enqueueing)."""

    batch_id: str
    item_id: int | None = None
    run: Any = None  # the WorkflowRun, for its live status


@dataclass
class Member:
    """A pool's view of one server. ``state``: ``up``, ``down`` (not answering; its items are
    re-dispatched), ``excluded`` (cannot run the job's workflow: ``why`` says why)."""

    url: str
    client: AsyncClient
    state: str = "down"
    why: str | None = None
    opened: bool = False
    jobs: set[Any] = field(default_factory=set)
    sending: int = 0
    completions: deque[float] = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))
    max_queue_size: int | None = None
    queue_pending: int | None = None
    room_hint: int | None = None  # 0 after the server cut a batch; cleared by the next probe
    cut_room: int | None = None
    """After a cut: our items waiting there then plus what still fitted (a lower bound of
    the queue limit, learned by the next probe when the server does not tell it)."""
    limit_learned: bool = False  # max_queue_size comes from cuts, not from the server
    failing_since: float | None = None
    probed_at: float = 0.0
    retry_at: float = 0.0  # a down server is probed again from then on
    retry_pause: float = 0.0
    abandoned: set[str] = field(default_factory=set)
    """Batch ids given up on here: canceled when the server answers again."""
    given_up: list[tuple[Any, int, int | None]] = field(default_factory=list)
    """(job, variation index, item id) of each item given up on here."""
    completed: int = 0
    failed: int = 0

    @property
    def in_flight(self) -> int:
        """Items of every running job on this server that have not ended."""
        return sum(len(job.sent_to(self)) for job in self.jobs)

    @property
    def rate(self) -> float | None:
        """Items per second over the last completions (None until three ended)."""
        if len(self.completions) < 3:
            return None
        span = self.completions[-1] - self.completions[0]
        return (len(self.completions) - 1) / span if span > 0 else None

    def view(self, usable: bool) -> ServerState:
        """The scheduler's input for this server."""
        room = None
        if self.max_queue_size is not None and self.queue_pending is not None:
            room = max(self.max_queue_size - self.queue_pending - self.sending, 0)
        if self.room_hint is not None:
            room = self.room_hint if room is None else min(room, self.room_hint)
        return ServerState(
            self.url,
            usable=usable and self.state == "up",
            in_flight=self.in_flight,
            backlog=max((self.queue_pending or 0) - self.in_flight, 0),
            rate=self.rate,
            room=room,
        )

    async def open(self) -> None:
        """Open the client, read the queue's counts and learn its limit; raises when the
        server does not answer (opening a client alone needs no HTTP answer)."""
        if not self.opened:
            await self.client.open()
            self.opened = True
        self.queue_pending = (await self.client.queue.status()).queue.pending
        self.max_queue_size = await queue_limit(self.client.context)
        self.limit_learned = False

    def needs_probe(self, now: float, interval: float) -> bool:
        """Whether to ask the server now: always unless it is visibly alive (socket up and
        an item of ours ended within two intervals); then only every COUNTS_EVERY seconds,
        to refresh its queue counts."""
        alive = (
            self.state == "up" and self.client.is_connected and bool(self.completions)
            and now - self.completions[-1] < 2 * interval
        )
        if self.state == "down":
            return now >= self.retry_at
        return not alive or now - self.probed_at >= COUNTS_EVERY

    async def probe(self, timeout: float) -> bool:
        """Ask the server for its queue counts; False when it does not answer in time."""
        try:
            if not self.opened:
                await asyncio.wait_for(self.open(), timeout)
            status = await asyncio.wait_for(self.client.queue.status(), timeout)
        except (errors.InvokeAIError, asyncio.TimeoutError, OSError) as exc:
            now = time.monotonic()
            if self.failing_since is None:
                self.failing_since = now
            if self.state == "down":
                self.retry_pause = min(max(self.retry_pause * 2, 0.5), DOWN_PROBE_MAX)
                self.retry_at = now + self.retry_pause
            self.why = f"not answering: {str(exc) or type(exc).__name__}"
            return False
        self.failing_since = None
        self.retry_pause = 0.0
        self.probed_at = time.monotonic()
        self.queue_pending = status.queue.pending
        if self.cut_room is not None and (self.max_queue_size is None or self.limit_learned):
            self.max_queue_size = learned_limit(self.max_queue_size, status.queue.pending,
                                                self.cut_room)
            self.limit_learned = True
        self.cut_room = None
        self.room_hint = None
        return True
