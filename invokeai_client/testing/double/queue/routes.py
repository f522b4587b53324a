"""The queue's REST routes: ``/api/v1/queue/{queue_id}/...`` and the invocation cache's
``/api/v1/app/invocation_cache``, with InvokeAI's permission rules of multi-user mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import ValidationError

from ..auth import is_owner_or_admin
from ..http import error, fastapi_errors, json_response, missing, parse_json, unprocessable
from .shapes import INT_LIST, BatchIds, ItemIds
from .state import TERMINAL
from .validation import validate_enqueue
from .views import item_dict, summary, without_none

if TYPE_CHECKING:
    from ..app import DoubleApp
    from .events import QueueEvents
    from .state import Item, QueueState


ItemView = Callable[["Item", Mapping[str, dict[str, Any]], dict[str, Any]], dict[str, Any]]


class QueueRoutes:
    """The route handlers of one double's queue."""

    def __init__(self, double: DoubleApp, state: QueueState, events: QueueEvents) -> None:
        self.double = double
        self.state = state
        self.events = events

    def install(self) -> None:
        prefix = "/api/v1/queue/{queue_id}"
        route = self.double.route
        route("POST", f"{prefix}/enqueue_batch", self._r_enqueue)
        route("GET", f"{prefix}/list_all", self._r_list_all)
        route("GET", f"{prefix}/item_ids", self._r_item_ids)
        route("POST", f"{prefix}/items_by_ids", self._r_items_by_ids)
        route("POST", f"{prefix}/item_summaries_by_ids", self._r_summaries)
        route("GET", f"{prefix}/list", self._r_list)  # before 6.7 (double.versions)
        route("PUT", f"{prefix}/processor/resume", self._r_resume)
        route("PUT", f"{prefix}/processor/pause", self._r_pause)
        route("PUT", f"{prefix}/cancel_all_except_current", self._r_cancel_all_except_current)
        route("PUT", f"{prefix}/delete_all_except_current", self._r_delete_all_except_current)
        route("PUT", f"{prefix}/cancel_by_batch_ids", self._r_cancel_by_batch_ids)
        route("PUT", f"{prefix}/cancel_by_destination", self._r_cancel_by_destination)
        route("PUT", f"{prefix}/retry_items_by_id", self._r_retry)
        route("PUT", f"{prefix}/clear", self._r_clear)
        route("PUT", f"{prefix}/prune", self._r_prune)
        route("GET", f"{prefix}/current", self._r_current)
        route("GET", f"{prefix}/next", self._r_next)
        route("GET", f"{prefix}/status", self._r_status)
        route("GET", f"{prefix}/b/{{batch_id}}/status", self._r_batch_status)
        route("GET", f"{prefix}/i/{{item_id}}", self._r_get_item)
        route("DELETE", f"{prefix}/i/{{item_id}}", self._r_delete_item)
        route("PUT", f"{prefix}/i/{{item_id}}/cancel", self._r_cancel_item)
        route("GET", f"{prefix}/counts_by_destination", self._r_counts_by_destination)
        route("DELETE", f"{prefix}/d/{{destination}}", self._r_delete_by_destination)
        cache = "/api/v1/app/invocation_cache"
        route("GET", f"{cache}/status", self._r_cache_status)
        route("DELETE", cache, self._r_cache_clear)
        route("PUT", f"{cache}/enable", self._r_cache_enable)
        route("PUT", f"{cache}/disable", self._r_cache_disable)

    def _scope(self, user: dict[str, Any]) -> str | None:
        """The user id a bulk operation is limited to (None: everyone's items)."""
        return None if user.get("is_admin") else str(user["user_id"])

    def _item_or_404(self, request: web.Request) -> Item:
        queue_id = request.match_info["queue_id"]
        raw = request.match_info["item_id"]
        try:
            item_id = int(raw)
        except ValueError:
            raise unprocessable(
                [{"type": "int_parsing", "loc": ["path", "item_id"],
                  "msg": "Input should be a valid integer, unable to parse string as an integer",
                  "input": raw}]
            ) from None
        item = self.state.items.get(item_id)
        if item is None or item.queue_id != queue_id:
            raise error(404, f"Queue item with id {item_id} not found in queue {queue_id}")
        return item

    def _item_for(self, request: web.Request, doing: str,
                  action: str | None = None) -> tuple[dict[str, Any], Item]:
        """The request's user and the item it names: 404 when unknown, 500 when the item is
        one the server cannot load (its bad-batch bug), 403 when ``action`` is not the
        user's to do."""
        user = self.double.current_user(request)
        item = self._item_or_404(request)
        if item.poison is not None:
            raise self._poison_error(item, doing)
        if action is not None and not is_owner_or_admin(user, item.user_id):
            raise error(403, f"You do not have permission to {action} this queue item")
        return user, item

    @staticmethod
    def _poison_error(item: Item, what: str) -> web.HTTPException:
        return error(500, f"Unexpected error while {what}: {item.poison}")

    async def _r_enqueue(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        body = parse_json(await request.read())
        plan, prepend = validate_enqueue(body)
        result = self.state.enqueue(queue_id, plan, prepend, str(user["user_id"]))
        await self.events.emit_batch_enqueued(queue_id, result, str(user["user_id"]))
        faults = self.state.faults
        until = faults.enqueue_response_until
        while until is not None:  # polled: the condition is any callable
            if until():
                break
            await asyncio.sleep(0.01)
        if faults.enqueue_response_delay > 0:
            await asyncio.sleep(faults.enqueue_response_delay)
        if faults.lose_enqueue_responses > 0:
            faults.lose_enqueue_responses -= 1
            if faults.lost_enqueue_status is None:
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPInternalServerError()
            return json_response(
                {"detail": "injected fault: the batch was enqueued, the answer is lost"},
                faults.lost_enqueue_status,
            )
        return json_response(result)


    async def _r_list_all(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        destination = request.query.get("destination")
        items = [
            item for item in self.state.queue_items(request.match_info["queue_id"])
            if destination is None or item.plan.destination == destination
        ]
        items.sort(key=lambda item: (-item.priority, item.item_id))
        for item in items:
            if item.poison is not None:
                raise self._poison_error(item, "listing all queue items")
        return json_response([item_dict(item, self.double.users, user) for item in items])

    async def _r_item_ids(self, request: web.Request) -> web.StreamResponse:
        self.double.current_user(request)
        order_dir = request.query.get("order_dir", "DESC")
        if order_dir not in ("DESC", "ASC"):
            raise unprocessable(
                [{"type": "enum", "loc": ["query", "order_dir"],
                  "msg": "Input should be 'DESC' or 'ASC'", "input": order_dir,
                  "ctx": {"expected": "'DESC' or 'ASC'"}}]
            )
        ids = [item.item_id for item in self.state.queue_items(request.match_info["queue_id"])]
        if order_dir == "DESC":
            ids.reverse()
        return json_response({"item_ids": ids, "total_count": len(ids)})

    async def _ids_body(self, request: web.Request) -> list[int]:
        body = parse_json(await request.read())
        try:
            return ItemIds.model_validate(body).item_ids
        except ValidationError as exc:
            raise unprocessable(fastapi_errors(exc, ("body",))) from None

    async def _r_items_by_ids(self, request: web.Request) -> web.StreamResponse:
        # Items the server cannot load (its bad-batch bug) are left out.
        return await self._by_ids(request, item_dict, loadable_only=True)

    async def _r_list(self, request: web.Request) -> web.StreamResponse:
        """InvokeAI before 6.7: cursor pages ordered by priority (desc), then item id."""
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        limit = int(request.query.get("limit", "50"))
        cursor = request.query.get("cursor")
        priority = int(request.query.get("priority", "0"))
        items = sorted(
            (i for i in self.state.items.values() if i.queue_id == queue_id),
            key=lambda i: (-i.priority, i.item_id),
        )
        if cursor is not None:
            items = [i for i in items if i.priority < priority
                     or (i.priority == priority and i.item_id > int(cursor))]
        page = [{**summary(i, self.double.users, user), "priority": i.priority,
                 "queue_id": queue_id} for i in items[:limit]]
        return json_response({"limit": limit, "has_more": len(items) > limit, "items": page})

    async def _r_summaries(self, request: web.Request) -> web.StreamResponse:
        return await self._by_ids(request, summary, loadable_only=False)

    async def _by_ids(self, request: web.Request, view: ItemView,
                      *, loadable_only: bool) -> web.StreamResponse:
        """The items of the queue named in the body (unknown ids left out), as ``view``."""
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        found = []
        for item_id in await self._ids_body(request):
            item = self.state.items.get(item_id)
            if item is not None and item.queue_id == queue_id and not (
                loadable_only and item.poison is not None
            ):
                found.append(view(item, self.double.users, user))
        return json_response(found)

    def _require_admin(self, request: web.Request) -> None:
        if not self.double.current_user(request).get("is_admin"):
            raise error(403, "Admin privileges required")

    async def _r_resume(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.state.paused = False
        self.state.wake()
        return json_response(self.state.processor_status())

    async def _r_pause(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.state.paused = True
        return json_response(self.state.processor_status())

    async def _cancel_pending(self, queue_id: str, items: Iterable[Item],
                              *, delete: bool = False) -> tuple[int, dict[str, list[int]]]:
        """Bulk-cancel (or delete) pending/waiting items: no per-item events, one bulk event."""
        by_user: dict[str, list[int]] = {}
        for item in list(items):
            if item.status in ("pending", "waiting") and not item.deleted:
                by_user.setdefault(item.user_id, []).append(item.item_id)
                if delete:
                    self.state.delete(item)
                else:
                    self.state.transition(item, "canceled")
        count = sum(len(ids) for ids in by_user.values())
        if by_user:
            self.state.wake()  # a stalled processor may be waiting behind one of them
            await self.events.emit_bulk("queue_items_canceled", queue_id, "canceled", by_user)
        return count, by_user

    async def _cancel_running(self, matches: Any) -> int:
        item = self.state.running
        running = item is not None and item.status == "in_progress" and matches(item)
        if running and item is not None and self.state.transition(item, "canceled"):
            await self.events.emit_status(item)
            self.state.wake()
            return 1
        return 0


    async def _r_cancel_all_except_current(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [i for i in self.state.queue_items(queue_id) if scope is None or i.user_id == scope]
        count, _ = await self._cancel_pending(queue_id, items)
        return json_response({"canceled": count})

    async def _r_delete_all_except_current(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [i for i in self.state.queue_items(queue_id) if scope is None or i.user_id == scope]
        count, _ = await self._cancel_pending(queue_id, items, delete=True)
        return json_response({"deleted": count})

    async def _r_cancel_by_batch_ids(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        try:
            batch_ids = BatchIds.model_validate(parse_json(await request.read())).batch_ids
        except ValidationError as exc:
            raise unprocessable(fastapi_errors(exc, ("body",))) from None
        wanted = set(batch_ids)
        items = [
            item
            for batch_id in dict.fromkeys(batch_ids)
            for item in self.state.batch_items(queue_id, batch_id)
            if scope is None or item.user_id == scope
        ]
        count, _ = await self._cancel_pending(queue_id, items)
        count += await self._cancel_running(
            lambda i: i.queue_id == queue_id and i.plan.batch_id in wanted
            and (scope is None or i.user_id == scope)
        )
        return json_response({"canceled": count})

    def _destination(self, request: web.Request) -> str:
        destination = request.query.get("destination")
        if destination is None:
            raise missing(["query", "destination"])
        return destination

    async def _r_cancel_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = self._destination(request)
        items = [
            i for i in self.state.queue_items(queue_id)
            if i.plan.destination == destination and (scope is None or i.user_id == scope)
        ]
        count, _ = await self._cancel_pending(queue_id, items)
        count += await self._cancel_running(
            lambda i: i.queue_id == queue_id and i.plan.destination == destination
            and (scope is None or i.user_id == scope)
        )
        return json_response({"canceled": count})

    async def _r_delete_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = request.match_info["destination"]

        def matches(item: Item) -> bool:
            return (item.queue_id == queue_id and item.plan.destination == destination
                    and (scope is None or item.user_id == scope))

        canceled_running = self.state.running if self.state.current() else None
        await self._cancel_running(matches)
        items = [i for i in self.state.queue_items(queue_id) if matches(i)]
        by_user: dict[str, list[int]] = {}
        for item in items:
            if item is not canceled_running:
                by_user.setdefault(item.user_id, []).append(item.item_id)
            self.state.delete(item)
        if by_user:
            await self.events.emit_bulk("queue_items_canceled", queue_id, "canceled", by_user)
        return json_response({"deleted": len(items)})

    async def _r_retry(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        body = parse_json(await request.read())
        try:
            item_ids = INT_LIST.validate_python(body)
        except ValidationError as exc:
            raise unprocessable(fastapi_errors(exc, ("body",))) from None
        originals: list[Item] = []
        for item_id in item_ids:
            item = self.state.items.get(item_id)
            if item is None:
                continue
            if item.queue_id != queue_id:
                raise error(404, f"Queue item with id {item_id} not found in queue {queue_id}")
            if not is_owner_or_admin(user, item.user_id):
                raise error(403, f"You do not have permission to retry queue item {item_id}")
            originals.append(item)
        retried: list[int] = []
        by_user: dict[str, list[int]] = {}
        seen: set[int] = set()
        room = self.state.room(queue_id)
        for original in originals:
            if room <= 0:
                break
            if original.status not in ("failed", "canceled") or original.item_id in seen:
                continue
            seen.add(original.item_id)
            self.state.requeue(original)
            retried.append(original.item_id)
            by_user.setdefault(original.user_id, []).append(original.item_id)
            room -= 1
        self.state.wake()
        await self.events.emit_bulk("queue_items_retried", queue_id, "retried", by_user)
        return json_response({"queue_id": queue_id, "retried_item_ids": retried})


    async def _r_clear(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        await self._cancel_running(
            lambda i: i.queue_id == queue_id and (scope is None or i.user_id == scope)
        )
        items = [i for i in self.state.queue_items(queue_id) if scope is None or i.user_id == scope]
        for item in items:
            self.state.delete(item)
        payload = {"timestamp": int(time.time()), "queue_id": queue_id, "user_id": scope}
        if scope is None:
            await self.events.emit("queue_cleared", payload, queue_id)
        else:
            await self.events.emit("queue_cleared", payload, [f"user:{scope}", "admin"])
            await self.events.emit("queue_cleared", {**payload, "user_id": "redacted"}, queue_id,
                                   self.events.owner_and_admin_sids([scope]))
        return json_response({"deleted": len(items)})

    async def _r_prune(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [
            i for i in self.state.queue_items(queue_id)
            if i.status in TERMINAL and (scope is None or i.user_id == scope)
        ]
        for item in items:
            self.state.delete(item)
        return json_response({"deleted": len(items)})

    async def _r_current(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        item = self.state.current()
        if item is None or item.queue_id != request.match_info["queue_id"]:
            return json_response(None)
        return json_response(item_dict(item, self.double.users, user))

    async def _r_next(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        pending = [i for i in self.state.queue_items(queue_id) if i.status == "pending"]
        if not pending:
            return json_response(None)
        item = min(pending, key=lambda i: (-i.priority, i.item_id))
        return json_response(item_dict(item, self.double.users, user))

    async def _r_status(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue = self.state.queue_status(
            request.match_info["queue_id"], str(user["user_id"]),
            is_admin=bool(user.get("is_admin")),
        )
        return json_response({"queue": queue, "processor": self.state.processor_status()})

    async def _r_batch_status(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        return json_response(
            self.state.batch_status(request.match_info["queue_id"], request.match_info["batch_id"],
                                    scope)
        )

    async def _r_get_item(self, request: web.Request) -> web.StreamResponse:
        user, item = self._item_for(request, "fetching queue item")
        return json_response(without_none(item_dict(item, self.double.users, user)))

    async def _r_delete_item(self, request: web.Request) -> web.StreamResponse:
        _, item = self._item_for(request, "deleting queue item", "delete")
        if item.status not in TERMINAL and self.state.transition(item, "canceled"):
            await self.events.emit_status(item)
        self.state.delete(item)
        return json_response(None)

    async def _r_cancel_item(self, request: web.Request) -> web.StreamResponse:
        user, item = self._item_for(request, "canceling queue item", "cancel")
        if self.state.transition(item, "canceled"):
            await self.events.emit_status(item)
            self.state.wake()
        return json_response(item_dict(item, self.double.users, user))

    async def _r_cache_status(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        return json_response(self.state.cache.status())

    async def _r_cache_clear(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.state.cache.clear()
        return json_response(None)

    async def _r_cache_enable(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.state.cache.enabled = True
        return json_response(None)

    async def _r_cache_disable(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.state.cache.enabled = False
        return json_response(None)

    async def _r_counts_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = self._destination(request)
        counts = self.state.destination_counts(queue_id, destination, scope)
        return json_response({"queue_id": queue_id, "destination": destination, **counts})

