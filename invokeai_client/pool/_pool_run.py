"""PoolRun: one variation sent through a pool (``pool.submit``), as a run: awaitable to its
result, its events from whichever server carries it, cancelable.

The variation may move: a server that stops answering is given up on and another takes it,
an item that failed is tried once on another server. :meth:`PoolRun.events` follows the
server run that currently carries the variation and, each time it is placed on a server,
yields :class:`ServerAssigned` first (``previous`` names the server it left, None the first
time), then that run's own events (a run's history is replayed first, see
:meth:`~invokeai_client.runs.WorkflowRun.events`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..runs.events import RunEvent

if TYPE_CHECKING:
    from .job import PoolJob
    from .results import PoolResult

__all__ = ["PoolRun", "ServerAssigned"]


@dataclass(frozen=True, slots=True)
class ServerAssigned(RunEvent):
    """The variation was placed on ``server`` as item ``item_id`` (``previous``: the server
    it left after that one stopped answering or failed it; None the first time). The
    events that follow are that server's."""

    server: str
    previous: str | None = None


class PoolRun:
    """One variation on its way through a pool (what :meth:`ServerPool.submit` returns).

    ``await run`` gives its :class:`~invokeai_client.pool.PoolResult` (a failed item
    included: check ``result.ok``); ``run.events()`` yields the events of the server run
    carrying it (see the module doc); ``await run.cancel()`` stops it on every server.
    Checks and compile happen first, before any request: a bad value raises when awaited.
    """

    def __init__(self, start: Coroutine[Any, Any, PoolJob]) -> None:
        self._start = asyncio.get_running_loop().create_task(start)

    def __repr__(self) -> str:
        state = "starting" if not self._start.done() else repr(self._job_or_none())
        return f"<PoolRun {state}>"

    def _job_or_none(self) -> PoolJob | None:
        if self._start.cancelled() or self._start.exception() is not None:
            return None
        return self._start.result()

    async def job(self) -> PoolJob:
        """The one-variation :class:`~invokeai_client.pool.PoolJob` behind this run."""
        return await asyncio.shield(self._start)

    @property
    def done(self) -> bool:
        """Whether the run ended (with a result, an error or a cancel)."""
        if not self._start.done():
            return False
        job = self._job_or_none()
        return job is None or job.done

    async def result(self) -> PoolResult:
        """The variation's one result (raises what the job raised: a refused value, a
        cancel)."""
        results: list[PoolResult] = await (await self.job())
        return results[0]

    def __await__(self) -> Generator[Any, None, PoolResult]:
        return self.result().__await__()

    async def cancel(self) -> int:
        """Cancel the variation wherever it is queued or running; awaiting the run then
        raises :class:`~invokeai_client.errors.InvokeAIError`. Returns how many items the
        servers canceled."""
        return await (await self.job()).cancel()

    async def events(self) -> AsyncIterator[RunEvent]:
        """The events of the run carrying the variation, server after server (each begun by
        a :class:`ServerAssigned`); ends when the variation has its result."""
        job = await self.job()
        followed: Any = None
        server: str | None = None
        while True:
            placed = job.placement(0)
            if placed is not None and placed[1] is not followed:
                url, followed = placed
                yield ServerAssigned(followed.item_id, followed.batch_id, url, server)
                server = url
                async for event in followed.events():
                    yield event
                continue
            if job.done:
                return
            await job.changed()
