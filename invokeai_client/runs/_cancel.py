"""Cancellation: server items canceled on request, when a waiter gives up, or at close.

A cancel applies what the server answers to the item's state (or has it read over REST when
the answer says too little). The ``shielded`` forms run in a background task, so cancelling
the caller (the usual reason to cancel) does not cut the request; they are bounded in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import errors
from ._state import TERMINAL, ItemState
from ._tasks import TaskSet

if TYPE_CHECKING:
    from ..repositories.queue import QueueRepository
    from ._tracker import BatchTracker

log = logging.getLogger("invokeai_client")

__all__ = ["CANCEL_TIMEOUT", "Canceller"]

CANCEL_TIMEOUT = 10.0
"""Seconds a cancel request may take when a run is abandoned or the client closes."""


class Canceller:
    """Cancels server items of one client's runs; see the module doc."""

    def __init__(
        self,
        queue: QueueRepository,
        check_soon: Callable[[ItemState], None],
        tasks: TaskSet,
    ) -> None:
        self._queue = queue
        self._check_soon = check_soon
        self._tasks = tasks

    async def cancel_item(self, state: ItemState) -> str:
        """Cancel one item on the server and apply what the server answers; the item's
        status the server reported (``"canceled"`` when it canceled it)."""
        if state.result is not None:
            return state.result.status
        try:
            item = await self._queue.cancel(state.item_id)
        except errors.NotFoundError:
            state.lose(f"the server no longer has queue item {state.item_id}")
            return "lost"
        if item.status in TERMINAL and not item.session:
            self._check_soon(state)
        else:
            state.apply_item(item)
        return item.status

    async def cancel_batch(self, batch: BatchTracker) -> int:
        """Cancel every pending or running item of ``batch``; returns the server's count."""
        if batch.key != batch.batch_id:
            # An attached item: its batch's other items are not ours to cancel.
            states = batch.unsettled()
            for state in states:
                await self.cancel_item(state)
            return sum(1 for state in states if state.status == "canceled")
        canceled = await self._queue.cancel_batch(batch.batch_id)
        # Servers before 6.14 send no event for pending items canceled in bulk.
        for state in batch.unsettled():
            self._check_soon(state)
        return canceled

    async def cancel_item_shielded(self, state: ItemState) -> tuple[bool, str]:
        """Cancel ``state``'s item even if the caller is being cancelled (bounded in time):
        whether the server confirmed the cancel, and what happened in words."""
        return await asyncio.shield(self._tasks.spawn(self.cancel_item_quietly(state)))

    async def cancel_batch_shielded(self, batch: BatchTracker) -> tuple[bool, str]:
        return await asyncio.shield(self._tasks.spawn(self.cancel_batch_quietly(batch)))

    async def cancel_item_quietly(self, state: ItemState) -> tuple[bool, str]:
        try:
            status = await asyncio.wait_for(self.cancel_item(state), CANCEL_TIMEOUT)
        except Exception as exc:
            log.warning("could not cancel queue item %s: %s", state.item_id, exc)
            self._check_soon(state)
            return False, f"canceling it failed ({exc}); it may still run on the server"
        if status == "canceled":
            return True, "it was canceled on the server"
        return False, f"the server did not cancel it: it was {status} already"

    async def cancel_batch_quietly(self, batch: BatchTracker) -> tuple[bool, str]:
        try:
            count = await asyncio.wait_for(self.cancel_batch(batch), CANCEL_TIMEOUT)
        except Exception as exc:
            log.warning("could not cancel batch %s: %s", batch.batch_id, exc)
            return False, f"canceling it failed ({exc}); its items may still run on the server"
        if count:
            return True, f"the server canceled {count} of its items"
        return False, "the server had none of its items left to cancel"
