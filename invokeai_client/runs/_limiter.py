"""The cap on queue items a client has in flight (``max_concurrency``)."""

from __future__ import annotations

import asyncio

from .. import errors

__all__ = ["Limiter"]


class Limiter:
    """Counts queue items in flight; ``acquire`` waits (FIFO), ``release`` never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def acquire(self, count: int) -> int:
        need = min(count, self.limit)
        if not self._waiters and self.in_use + need <= self.limit:
            self.in_use += need
            return need
        future = asyncio.get_running_loop().create_future()
        entry = (need, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif future.done() and not future.cancelled():
                self.release(need)  # granted just as we were cancelled: give it back
            raise
        return need

    def close(self) -> None:
        """Fail every waiter: the client is closing."""
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_exception(
                    errors.InvokeAIError("the client closed before this run could be submitted")
                )

    def release(self, count: int) -> None:
        self.in_use -= count
        while self._waiters:
            need, future = self._waiters[0]
            if self.in_use + need > self.limit:
                break
            self._waiters.pop(0)
            if not future.done():
                self.in_use += need
                future.set_result(None)
