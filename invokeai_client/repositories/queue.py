"""QueueRepository: manage the session queue (status, items, cancel, retry, prune, processor).

Submitting work is :mod:`invokeai_client.runs` (``client.runs`` / workflow handles); this
repository is for looking at and steering what is queued.

Listing follows the 6.7+ API: one ``item_ids`` snapshot, then items hydrated in chunks with
``item_summaries_by_ids`` (6.14.1+; older servers fall back to ``items_by_ids``), so a listing
yields every item that existed when it started exactly once, even while the queue moves.
Servers before 6.7 are read with their cursor-paged ``list`` instead (``_queue_legacy``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from .. import errors
from .._answers import as_object, integer, parse, parse_list, reading
from .._checks import check_choice
from .._paging import Page, Paginator, list_page
from ..types.queue import (
    QUEUE_STATUSES,
    BatchStatus,
    InvocationCacheStatus,
    ProcessorStatus,
    QueueAndProcessorStatus,
    QueueCountsByDestination,
    RetryItemsResult,
    SessionQueueItem,
    SessionQueueItemSummary,
)
from . import _queue_legacy
from ._base import Repository, check_text, naming

if TYPE_CHECKING:
    from .._context import ClientContext

__all__ = ["QueueRepository"]

CACHE = "/api/v1/app/invocation_cache"


def _item_id(value: object, *, input: str = "item_id") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        item_id = getattr(value, "item_id", None)
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            return item_id
        raise errors.ValidationError(
            f"{input} must be a queue item id (int) or a queue item, got {value!r}",
            input=input,
            rule="integer item id",
        )
    if value < 1:
        raise errors.ValidationError(
            f"{input} must be a queue item id (an int >= 1), got {value!r}",
            input=input,
            rule="integer item id",
        )
    return value


def _item_ids(values: int | object | Iterable[Any], *, input: str = "item_ids") -> list[int]:
    if isinstance(values, Iterable) and not isinstance(values, (str, bytes)):
        return [_item_id(v, input=input) for v in values]
    return [_item_id(values, input=input)]


class QueueRepository(Repository):
    """The session queue of this client's ``queue_id`` (``client.queue``).

    Admin-only on multi-user servers: pausing/resuming the processor and the invocation
    cache. Other users' items appear redacted to non-admins (see ``is_redacted``).
    """

    def __init__(self, context: ClientContext, queue_id: str | None = None) -> None:
        super().__init__(context)
        self._queue_id = queue_id
        self._summaries_supported: bool | None = None

    @property
    def queue_id(self) -> str:
        return self._queue_id or self._context.queue_id

    @property
    def _prefix(self) -> str:
        return f"/api/v1/queue/{self.queue_id}"

    # -- status --------------------------------------------------------------------------

    async def status(self) -> QueueAndProcessorStatus:
        """Counts by status, the item being processed, and whether the processor runs."""
        answer = await self._http.request("GET", f"{self._prefix}/status")
        return parse(QueueAndProcessorStatus, answer)

    async def batch_status(self, batch_id: str) -> BatchStatus:
        """Counts by status of one batch (an unknown batch has all counts at 0)."""
        check_text("batch_id", batch_id, in_path=True)
        answer = await self._http.request("GET", f"{self._prefix}/b/{batch_id}/status")
        return parse(BatchStatus, answer)

    async def counts_by_destination(self, destination: str) -> QueueCountsByDestination:
        """Counts by status of the items sent to ``destination``."""
        check_text("destination", destination, in_path=True)
        answer = await self._http.request(
            "GET", f"{self._prefix}/counts_by_destination", params={"destination": destination}
        )
        return parse(QueueCountsByDestination, answer)

    # -- items ---------------------------------------------------------------------------

    async def get(self, item_id: int) -> SessionQueueItem:
        """One queue item with its session; :class:`~errors.NotFoundError` naming it."""
        item_id = _item_id(item_id)
        with naming("queue item", item_id, action="read"):
            answer = await self._http.request("GET", f"{self._prefix}/i/{item_id}")
        return parse(SessionQueueItem, answer)

    async def current(self) -> SessionQueueItem | None:
        """The item being processed now, or None when idle."""
        answer = await self._http.request("GET", f"{self._prefix}/current")
        return parse(SessionQueueItem, answer) if answer else None

    async def next(self) -> SessionQueueItem | None:
        """The item that will be processed next, or None."""
        answer = await self._http.request("GET", f"{self._prefix}/next")
        return parse(SessionQueueItem, answer) if answer else None

    async def item_ids(self, *, order: Literal["desc", "asc"] = "desc") -> builtins.list[int]:
        """Every item id of the queue, newest first (``order="asc"``: oldest first).

        The server orders by creation time only, so the items of one batch (same time) come
        in any order; ids grow with creation, so they are sorted here to make it definite.
        """
        if order not in ("desc", "asc"):
            raise errors.ValidationError(
                f"order must be 'desc' or 'asc', got {order!r}", input="order", rule="desc|asc"
            )
        if await self._legacy():
            listed = await _queue_legacy.list_items(self._http, self._prefix)
            with reading():
                ids = [integer(i.get("item_id")) for i in listed]
        else:
            answer = await self._http.request(
                "GET", f"{self._prefix}/item_ids", params={"order_dir": order.upper()}
            )
            with reading():
                ids = [integer(i) for i in as_object(answer).get("item_ids") or []]
        return sorted(ids, reverse=order == "desc")

    async def _legacy(self) -> bool:
        """Whether this server predates ``item_ids`` (InvokeAI before 6.7)."""
        return not (await self._context.features()).supports("queue_item_ids")

    async def get_many(self, item_ids: Iterable[int]) -> builtins.list[SessionQueueItem]:
        """Full items (with sessions) in the given order; unknown ids are left out."""
        out: builtins.list[SessionQueueItem] = []
        if await self._legacy():
            found = await _queue_legacy.read_items(self._http, self._prefix, _item_ids(item_ids))
            return parse_list(SessionQueueItem, found)
        async for answer in self._post_chunks(
            f"{self._prefix}/items_by_ids", "item_ids", _item_ids(item_ids)
        ):
            out.extend(parse_list(SessionQueueItem, answer, missing_ok=True))
        return out

    async def get_summaries(
        self, item_ids: Iterable[int]
    ) -> builtins.list[SessionQueueItemSummary]:
        """Item summaries (no session: light) in the given order; unknown ids left out.

        Uses ``item_summaries_by_ids`` (InvokeAI 6.14.1+) and falls back to full items on
        servers without it.
        """
        ids = _item_ids(item_ids)
        if await self._legacy():
            listed = await _queue_legacy.list_items(self._http, self._prefix)
            by_id = {i.get("item_id"): i for i in listed}
            return parse_list(SessionQueueItemSummary, [by_id[i] for i in ids if i in by_id])
        if self._summaries_supported is not False:
            try:
                out: builtins.list[SessionQueueItemSummary] = []
                async for answer in self._post_chunks(
                    f"{self._prefix}/item_summaries_by_ids", "item_ids", ids
                ):
                    self._summaries_supported = True
                    out.extend(parse_list(SessionQueueItemSummary, answer, missing_ok=True))
                return out
            except (errors.EndpointNotAvailableError, errors.NotFoundError):
                self._summaries_supported = False  # before 6.14.1
            except errors.APIError as exc:
                if exc.status != 405:
                    raise
                self._summaries_supported = False
        full = await self.get_many(ids)
        return [
            SessionQueueItemSummary.model_validate(i.model_dump(exclude={"session", "workflow"}))
            for i in full
        ]

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        batch_id: str | None = None,
        destination: str | None = None,
        order: Literal["desc", "asc"] = "desc",
        page_size: int = 100,
    ) -> Paginator[SessionQueueItemSummary]:
        """Queue items as summaries, newest first: ``await`` for the first page,
        ``async for`` for all. Filters by status(es), batch and destination.

        The ids are read once when iteration starts (a snapshot): items enqueued later are
        not included, and items deleted meanwhile are skipped.
        """
        return self._paginate(self.get_summaries, status, batch_id, destination, order, page_size)

    def list_full(
        self,
        *,
        status: str | Iterable[str] | None = None,
        batch_id: str | None = None,
        destination: str | None = None,
        order: Literal["desc", "asc"] = "desc",
        page_size: int = 100,
    ) -> Paginator[SessionQueueItem]:
        """Like :meth:`list`, but full items with their sessions (heavier)."""
        return self._paginate(self.get_many, status, batch_id, destination, order, page_size)

    def _paginate(
        self,
        hydrate: Any,
        status: str | Iterable[str] | None,
        batch_id: str | None,
        destination: str | None,
        order: Literal["desc", "asc"],
        page_size: int,
    ) -> Paginator[Any]:
        statuses = {status} if isinstance(status, str) else set(status) if status else None
        for value in statuses or ():
            check_choice("status", value, QUEUE_STATUSES)
        if batch_id is not None:
            check_text("batch_id", batch_id)
        if destination is not None:
            check_text("destination", destination)
        if order not in ("desc", "asc"):
            raise errors.ValidationError(
                f"order must be 'desc' or 'asc', got {order!r}", input="order", rule="desc|asc"
            )
        snapshot: builtins.list[builtins.list[int]] = []

        async def fetch(offset: int, limit: int) -> Page[Any]:
            if offset == 0 or not snapshot:
                snapshot[:] = [await self.item_ids(order=order)]
            ids = snapshot[0]
            window = list_page(ids, offset, limit)
            items = await hydrate(window.items) if window.items else []
            return Page(items, offset=offset, limit=limit, total=len(ids),
                        has_more=window.has_more)

        def keep(item: Any) -> bool:
            return (
                (statuses is None or item.status in statuses)
                and (batch_id is None or item.batch_id == batch_id)
                and (destination is None or item.destination == destination)
            )

        filtered = statuses is not None or batch_id is not None or destination is not None
        return Paginator[Any](
            fetch, page_size=page_size, key=lambda item: item.item_id,
            where=keep if filtered else None,
        )

    # -- cancel, retry, delete -----------------------------------------------------------

    async def _count(self, key: str, method: str, path: str, **options: Any) -> int:
        """A bulk call of this queue; how many items it touched (the answer's ``key``)."""
        answer = await self._http.request(method, f"{self._prefix}{path}", **options)
        with reading():
            return integer((answer or {}).get(key, 0))

    async def cancel(self, item_id: int) -> SessionQueueItem:
        """Cancel one item (pending or running); a finished item is left as it is."""
        item_id = _item_id(item_id)
        with naming("queue item", item_id, action="cancel"):
            answer = await self._http.request("PUT", f"{self._prefix}/i/{item_id}/cancel")
        return parse(SessionQueueItem, answer)

    async def cancel_batch(self, batch_ids: str | Iterable[str]) -> int:
        """Cancel every unfinished item of one or more batches; returns how many."""
        if isinstance(batch_ids, str):
            ids = [batch_ids]
        elif isinstance(batch_ids, Iterable):
            ids = builtins.list(batch_ids)
        else:
            raise errors.ValidationError(
                f"batch_ids must be a batch id or a list of them, got {batch_ids!r}",
                input="batch_ids",
                rule="string or strings",
            )
        for batch_id in ids:
            check_text("batch_id", batch_id, in_path=True)
        if not ids:
            return 0
        return await self._count("canceled", "PUT", "/cancel_by_batch_ids", json={"batch_ids": ids})

    async def cancel_destination(self, destination: str) -> int:
        """Cancel every unfinished item sent to ``destination``; returns how many."""
        check_text("destination", destination, in_path=True)
        return await self._count(
            "canceled", "PUT", "/cancel_by_destination", params={"destination": destination}
        )

    async def cancel_all_except_current(self) -> int:
        """Cancel every pending item (the running one goes on); returns how many (5.10+)."""
        await self._require("queue_cancel_all_except_current")
        return await self._count("canceled", "PUT", "/cancel_all_except_current")

    async def retry(self, item_ids: int | Iterable[int]) -> RetryItemsResult:
        """Enqueue failed or canceled items again, as NEW items of the same batch.

        The result lists the original ids; the new items carry ``retried_from_item_id``.
        """
        ids = _item_ids(item_ids)
        if not ids:
            return RetryItemsResult(queue_id=self.queue_id)
        await self._require("queue_retry")
        answer = await self._http.request(
            "PUT", f"{self._prefix}/retry_items_by_id", json=ids, retry=False
        )
        return parse(RetryItemsResult, answer)

    async def delete(self, item_id: int) -> None:
        """Delete one item (canceling it first if it is running; 6.0+)."""
        item_id = _item_id(item_id)
        await self._require("queue_delete_item")
        with naming("queue item", item_id, action="delete"):
            await self._http.request("DELETE", f"{self._prefix}/i/{item_id}")

    async def delete_destination(self, destination: str) -> int:
        """Delete every item sent to ``destination``; returns how many (6.0+)."""
        check_text("destination", destination, in_path=True)
        await self._require("queue_delete_destination")
        return await self._count("deleted", "DELETE", f"/d/{destination}")

    async def delete_all_except_current(self) -> int:
        """Delete every pending item (the running one goes on); returns how many (6.0+)."""
        await self._require("queue_delete_all_except_current")
        return await self._count("deleted", "PUT", "/delete_all_except_current")

    async def prune(self) -> int:
        """Remove finished items (completed, failed, canceled); returns how many."""
        return await self._count("deleted", "PUT", "/prune")

    async def clear(self) -> int:
        """Delete every item, canceling the running one (a non-admin: their own items)."""
        return await self._count("deleted", "PUT", "/clear")

    # -- processor -----------------------------------------------------------------------

    async def pause(self) -> ProcessorStatus:
        """Stop taking new items (the running one finishes); admin on multi-user servers."""
        answer = await self._http.request("PUT", f"{self._prefix}/processor/pause")
        return parse(ProcessorStatus, answer)

    async def resume(self) -> ProcessorStatus:
        """Start taking items again."""
        answer = await self._http.request("PUT", f"{self._prefix}/processor/resume")
        return parse(ProcessorStatus, answer)

    # -- invocation cache ----------------------------------------------------------------

    async def cache_status(self) -> InvocationCacheStatus:
        """The invocation cache: size, hits, misses, enabled (admin)."""
        return parse(InvocationCacheStatus, await self._http.request("GET", f"{CACHE}/status"))

    async def enable_cache(self) -> None:
        """Turn the invocation cache on (identical nodes reuse earlier outputs)."""
        await self._http.request("PUT", f"{CACHE}/enable", expect="none")

    async def disable_cache(self) -> None:
        """Turn the invocation cache off (every node runs every time)."""
        await self._http.request("PUT", f"{CACHE}/disable", expect="none")

    async def clear_cache(self) -> None:
        """Empty the invocation cache."""
        await self._http.request("DELETE", CACHE, expect="none")
