"""AsyncScope: one home for ``async with`` on the SDK's objects that hold something (a
connection, uploads, a server job) until a block ends."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

__all__ = ["AsyncScope"]


class AsyncScope:
    """``async with obj:`` runs :meth:`_enter` and gives ``obj`` back; leaving the block runs
    :meth:`_leave` with the exception that ended it (None when it ended normally)."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        await self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave(exc)

    async def _enter(self) -> None:
        """What entering does besides giving the object back (nothing by default)."""

    async def _leave(self, exc: BaseException | None) -> None:
        """What leaving the block does; ``exc`` ended it (None: it ended normally)."""
        raise NotImplementedError
