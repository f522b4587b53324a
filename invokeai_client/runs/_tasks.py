"""Background tasks of the runs machinery, kept so that closing the client can finish them."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["TaskSet"]


class TaskSet:
    """Tasks started by the runs machinery (cancels, enqueue follow-ups); each removes
    itself when done."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self.tasks)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def finish(self, timeout: float, *more: asyncio.Future[Any]) -> None:
        """Wait up to ``timeout`` seconds for every task (and ``more``), then cancel the rest."""
        pending = [*self.tasks, *more]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
