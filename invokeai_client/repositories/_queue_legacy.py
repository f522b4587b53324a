"""Queue reads on InvokeAI before 6.7, which has no ``item_ids`` / ``items_by_ids``.

Those servers list the queue with ``GET /queue/{q}/list`` (cursor pages ordered by priority,
then item id) and read full items one by one (``GET /queue/{q}/i/{id}``). The repository
calls these only where :mod:`invokeai_client._compat` says the newer routes are missing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .. import errors

if TYPE_CHECKING:
    from .._http import HttpTransport

PAGE = 1000
"""Items per ``/list`` page (the server's default is 50; it sets no maximum)."""

PARALLEL_READS = 8
"""Item reads in flight at once when hydrating full items one by one."""


async def list_items(http: HttpTransport, prefix: str) -> list[dict[str, Any]]:
    """Every item of the queue (without sessions), by walking the cursor pages."""
    queue_id = prefix.rstrip("/").rsplit("/", 1)[-1]
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": PAGE}
    while True:
        answer = await http.request("GET", f"{prefix}/list", params=params) or {}
        page = [i for i in answer.get("items") or [] if isinstance(i, dict)]
        # The old cursor query lets items of other queues through on later pages.
        items.extend(i for i in page if i.get("queue_id", queue_id) == queue_id)
        if not answer.get("has_more") or not page:
            return items
        last = page[-1]
        params = {"limit": PAGE, "cursor": int(last["item_id"]),
                  "priority": int(last.get("priority") or 0)}


async def read_items(http: HttpTransport, prefix: str, ids: list[int]) -> list[dict[str, Any]]:
    """Full items in the order of ``ids``, read one by one; unknown ids are left out."""
    gate = asyncio.Semaphore(PARALLEL_READS)

    async def read(item_id: int) -> dict[str, Any] | None:
        async with gate:
            try:
                answer = await http.request("GET", f"{prefix}/i/{item_id}")
            except errors.NotFoundError:
                return None
        return answer if isinstance(answer, dict) else None

    found = await asyncio.gather(*(read(i) for i in ids))
    return [item for item in found if item is not None]
