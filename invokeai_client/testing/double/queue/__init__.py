"""The double's session queue: ``/api/v1/queue/{queue_id}/...`` and the processor behind it.

What it does, as InvokeAI 6.14.2 does it:

- ``enqueue_batch`` validates the batch like the server (FastAPI-shaped 422s), expands
  ``Batch.data`` (runs outermost, inner lists zipped, cartesian product across them), honours
  a client-chosen ``batch_id``, emits ``batch_enqueued`` inside the request and answers 200
  with ``item_ids`` in descending order. ``prepend`` gives the batch priority max+1.
- One worker runs items by priority DESC, item_id ASC (users take turns in multi-user mode),
  executing the graph's model-free nodes for real (see ``double.nodes``), with iterate/collect
  expansion and InvokeAI's scheduling order, and emits the events in the server's order.
- Wrong-typed batch data is accepted and then stalls the processor, like the real server's
  bug (``cancel_by_batch_ids`` + ``prune`` recover), so clients can test their guard.
- :class:`QueueFaults` (``double.queue.faults``) injects the faults a real server shows only
  rarely: slow nodes, duplicated / late / shuffled / missing events, dropped sockets, lost
  enqueue answers, a stalled processor.

State stays lean for 10,000 items in flight: items share their batch's prepared graph, counts
are kept incrementally, the pending queue is a heap, and every event costs O(1).

Its rooms: ``shapes`` + ``validation`` (the 422s) -> ``plan`` (a prepared batch and its sessions) ->
``state`` (items, counts, views of status) <- ``routes`` (REST) and ``processor`` (running
items, with ``session`` scheduling nodes and ``cache``), both sending through ``events``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from .cache import InvocationCache
from .events import QueueEvents
from .faults import QueueFaults
from .processor import Processor
from .routes import QueueRoutes
from .state import Item, QueueState

if TYPE_CHECKING:
    from ..app import DoubleApp

__all__ = ["InvocationCache", "QueueFaults", "SessionQueue"]


class SessionQueue(QueueState):
    """The session queue and processor of an :class:`InvokeAIDouble` (``double.queue``).

    Its state (items, counts and the switches ``faults``, ``cache``, ``paused``,
    ``max_queue_size``) is this object; its processor, events and routes act on it.
    """

    def __init__(self, double: DoubleApp) -> None:
        super().__init__()
        self.events = QueueEvents(double, self)
        self.processor = Processor(double, self, self.events)
        self.routes = QueueRoutes(double, self, self.events)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def install(cls, double: DoubleApp) -> SessionQueue:
        """A queue for ``double`` with its routes, running while the double's app runs."""
        queue = cls(double)
        queue.routes.install()
        double.app.on_startup.append(queue._start)
        double.app.on_cleanup.append(queue._stop)
        return queue

    @property
    def events_sent(self) -> int:
        """Events handed to sockets so far (after faults), for tests and benchmarks."""
        return self.events.events_sent

    @property
    def _running(self) -> Item | None:
        # The item the processor is on (the suite's "is the double idle" check reads it).
        return self.running

    async def flush_late_events(self) -> int:
        """Send every event held back by :attr:`QueueFaults.event_delay` now; returns how
        many (so a test can release late events exactly when it wants)."""
        return await self.events.flush_late_events()

    # -- lifecycle ---------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        self.wake_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.processor.run_forever(), name="invokeai-double-processor"),
            *self.events.start(),
        ]

    async def _stop(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
