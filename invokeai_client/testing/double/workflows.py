"""The double's workflow area: ``GET /openapi.json`` and the workflow library routes.

``/openapi.json`` serves the compact extract of InvokeAI 6.14.2's invocation schemas shipped
with the SDK (made from a capture of the real document by
``scripts/extract_invocation_schemas.py``), so handles loaded against the double are typed like
against the real server.

The library (``/api/v1/workflows``) keeps records in ``double.workflows`` (id -> record) with
the real server's rules: single-user saves are public and owned by ``system``; multi-user
saves are private to their owner, who alone (or an admin) may read, change or delete them
unless shared; default workflows (category ``default``, ids ``default_...``) are read-only and
listed for everyone. ``double.add_workflow(data, category="default")`` seeds one.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

import anyio
from aiohttp import web

from .http import error, json_response, missing
from .records import db_timestamp

if TYPE_CHECKING:
    from .app import DoubleApp

BASE = "/api/v1/workflows"
REQUIRED_STRINGS = ("name", "author", "description", "version", "contact", "tags", "notes")
ORDER_BY = ("created_at", "updated_at", "opened_at", "name", "is_public")
SEMVER = re.compile(r"^\d+\.\d+\.\d+")
DEFAULT_EXAMPLES = ("arithmetic-form", "image-pipeline")
"""Example workflows the double ships as its built-in (``default``) library workflows."""


def _example(name: str) -> dict[str, Any]:
    from ...workflows import examples

    data: dict[str, Any] = json.loads(examples.path(name).read_text(encoding="utf-8"))
    return data


def install(double: DoubleApp) -> None:
    """Add the workflow routes to ``double``."""
    routes = _Routes(double)
    double.route("GET", "/openapi.json", routes.openapi)
    double.route("GET", f"{BASE}/", routes.list_workflows)
    double.route("POST", f"{BASE}/", routes.create)
    double.route("GET", f"{BASE}/tags", routes.tags)
    double.route("GET", f"{BASE}/counts_by_category", routes.counts_by_category)
    double.route("GET", f"{BASE}/counts_by_tag", routes.counts_by_tag)
    double.route("GET", f"{BASE}/i/{{workflow_id}}", routes.get)
    double.route("PATCH", f"{BASE}/i/{{workflow_id}}", routes.update)
    double.route("DELETE", f"{BASE}/i/{{workflow_id}}", routes.delete)
    double.route("PATCH", f"{BASE}/i/{{workflow_id}}/is_public", routes.set_public)
    double.route("PUT", f"{BASE}/i/{{workflow_id}}/opened_at", routes.opened)


def add_workflow(
    double: DoubleApp,
    workflow: dict[str, Any],
    *,
    category: str = "user",
    user_id: str = "system",
    is_public: bool | None = None,
) -> dict[str, Any]:
    """Put a workflow in the double's library (defaults get ``default_<uuid>`` ids)."""
    data = json.loads(json.dumps(workflow))
    prefix = "default_" if category == "default" else ""
    workflow_id = f"{prefix}{uuid.uuid4().hex}"
    data["id"] = workflow_id
    data.setdefault("meta", {})["category"] = category
    now = db_timestamp()
    record = {
        "workflow_id": workflow_id,
        "name": data.get("name", ""),
        "created_at": now,
        "updated_at": now,
        "opened_at": None,
        "user_id": user_id,
        "is_public": (not double.multiuser) if is_public is None else is_public,
        "workflow": data,
    }
    double.workflows[workflow_id] = record
    return record


def _validation_error(loc: list[Any], msg: str, kind: str = "value_error") -> web.HTTPException:
    return error(422, [{"type": kind, "loc": loc, "msg": msg, "input": None}])


def _check_workflow(body: Any, *, with_id: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("workflow"), dict):
        raise missing(["body", "workflow"])
    workflow: dict[str, Any] = body["workflow"]
    for key in REQUIRED_STRINGS:
        if not isinstance(workflow.get(key), str):
            raise _validation_error(["body", "workflow", key], "Input should be a valid string",
                                    "string_type")
    for key in ("nodes", "edges", "exposedFields"):
        if not isinstance(workflow.get(key), list):
            raise _validation_error(["body", "workflow", key], "Input should be a valid list",
                                    "list_type")
    meta = workflow.get("meta")
    if not isinstance(meta, dict) or not SEMVER.match(str(meta.get("version", ""))):
        raise _validation_error(["body", "workflow", "meta", "version"], "Invalid semver")
    if meta.get("category", "user") not in ("user", "default"):
        raise _validation_error(["body", "workflow", "meta", "category"],
                                "Input should be 'user' or 'default'", "enum")
    form = workflow.get("form")
    if form is not None and not isinstance(form, dict):
        raise _validation_error(["body", "workflow", "form"], "Input should be a valid dictionary",
                                "dict_type")
    if with_id and not isinstance(workflow.get("id"), str):
        raise missing(["body", "workflow", "id"])
    return workflow


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    workflow = record["workflow"]
    return {
        "workflow_id": record["workflow_id"],
        "name": record["name"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "opened_at": record["opened_at"],
        "user_id": record["user_id"],
        "is_public": record["is_public"],
        "description": workflow.get("description", ""),
        "category": workflow.get("meta", {}).get("category", "user"),
        "tags": workflow.get("tags", ""),
        "thumbnail_url": None,
        "call_saved_workflow_compatibility": _compatibility(workflow),
    }


def _compatibility(workflow: dict[str, Any]) -> dict[str, Any]:
    returns = sum(
        1 for n in workflow.get("nodes", [])
        if isinstance(n, dict) and n.get("type") == "invocation"
        and isinstance(n.get("data"), dict) and n["data"].get("type") == "workflow_return"
    )
    if returns == 1:
        return {"is_callable": True, "reason": None, "message": None}
    return {
        "is_callable": False,
        "reason": "missing_workflow_return",
        "message": "The workflow needs exactly one workflow_return node.",
    }


def _full(record: dict[str, Any]) -> dict[str, Any]:
    full = _dto(record)
    full["thumbnail_url"] = None
    full["call_saved_workflow_compatibility"] = _compatibility(record["workflow"])
    return full


def _dto(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record)


class _Routes:
    def __init__(self, double: DoubleApp) -> None:
        self.double = double
        self._openapi: bytes | None = None
        self._seeded = False

    async def _seed(self) -> None:
        """Add the built-in workflows on first use of the library (files read off the loop)."""
        if self._seeded:
            return
        self._seeded = True
        for name in DEFAULT_EXAMPLES:
            data = await anyio.to_thread.run_sync(_example, name)
            add_workflow(self.double, data, category="default")

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            from ...fields.schema import bundled_openapi_text

            text = await anyio.to_thread.run_sync(bundled_openapi_text)
            self._openapi = text.encode()
        return web.Response(body=self._openapi, content_type="application/json")

    # -- helpers ---------------------------------------------------------------------------

    async def _record(
        self, request: web.Request, *, write: bool, workflow_id: str | None = None
    ) -> dict[str, Any]:
        """The library record the request names, if this user may read (or ``write``) it."""
        await self._seed()
        user = self.double.current_user(request)
        record = self.double.workflows.get(workflow_id or request.match_info["workflow_id"])
        if record is None:
            raise error(404, "Workflow not found")
        if self.double.multiuser and not user.get("is_admin"):
            category = record["workflow"].get("meta", {}).get("category")
            owner = record["user_id"] == user["user_id"]
            if write and not owner:
                raise error(403, "Not authorized to update this workflow")
            if not write and not (owner or record["is_public"] or category == "default"):
                raise error(403, "Not authorized to access this workflow")
        return record

    @staticmethod
    def _changed(record: dict[str, Any]) -> web.Response:
        """Stamp a changed record's ``updated_at`` and answer with it."""
        record["updated_at"] = db_timestamp()
        return json_response(_dto(record))

    # -- routes ----------------------------------------------------------------------------

    async def list_workflows(self, request: web.Request) -> web.Response:
        await self._seed()
        user = self.double.current_user(request)
        q = request.query
        try:
            page = int(q.get("page", "0"))
            per_page = int(q["per_page"]) if q.get("per_page") else None
        except ValueError:
            raise _validation_error(["query", "page"], "Input should be a valid integer",
                                    "int_parsing") from None
        order_by = q.get("order_by", "name")
        if order_by not in ORDER_BY:
            raise _validation_error(["query", "order_by"], "Input should be one of " +
                                    ", ".join(ORDER_BY), "enum")
        categories = q.getall("categories", [])
        for category in categories:
            if category not in ("user", "default"):
                raise _validation_error(["query", "categories", 0],
                                        "Input should be 'user' or 'default'", "enum")
        tags = [t.strip().lower() for t in q.getall("tags", [])]
        query = (q.get("query") or "").strip().lower()
        is_public = q.get("is_public")
        opened = q.get("has_been_opened")
        restrict = (
            self.double.multiuser and not user.get("is_admin")
            and (not categories or "user" in categories) and is_public != "true"
        )
        records = []
        for record in self.double.workflows.values():
            summary = _summary(record)
            if categories and summary["category"] not in categories:
                continue
            if tags and not any(t in summary["tags"].lower() for t in tags):
                continue
            if query and not any(
                query in str(summary[k]).lower() for k in ("name", "description", "tags")
            ):
                continue
            if is_public is not None and summary["is_public"] != (is_public == "true"):
                continue
            if opened is not None and (summary["opened_at"] is not None) != (opened == "true"):
                continue
            if restrict and summary["category"] == "user" and record["user_id"] != user["user_id"]:
                continue
            records.append(summary)
        reverse = q.get("direction", "ASC") == "DESC"
        records.sort(key=lambda r: (r[order_by] is None, str(r[order_by]).lower()), reverse=reverse)
        total = len(records)
        if per_page:
            items = records[page * per_page:(page + 1) * per_page]
            pages = math.ceil(total / per_page)
        else:
            items, pages, per_page = records, 1, total
        return json_response(
            {"page": page, "pages": pages, "per_page": per_page, "total": total, "items": items}
        )

    async def get(self, request: web.Request) -> web.Response:
        return json_response(_full(await self._record(request, write=False)))

    async def create(self, request: web.Request) -> web.Response:
        await self._seed()
        user = self.double.current_user(request)
        workflow = _check_workflow(await request.json(), with_id=False)
        workflow.pop("id", None)
        category = workflow.get("meta", {}).get("category", "user")
        record = add_workflow(
            self.double, workflow, category=category, user_id=user["user_id"]
        )
        return json_response(_dto(record))

    async def update(self, request: web.Request) -> web.Response:
        await self._seed()
        workflow = _check_workflow(await request.json(), with_id=True)
        # Like the server: the workflow's own id is authoritative, not the path's.
        record = await self._record(request, write=True, workflow_id=workflow["id"])
        record["workflow"] = workflow
        record["name"] = workflow["name"]
        return self._changed(record)

    async def delete(self, request: web.Request) -> web.Response:
        record = await self._record(request, write=True)
        del self.double.workflows[record["workflow_id"]]
        return json_response(None)

    async def set_public(self, request: web.Request) -> web.Response:
        record = await self._record(request, write=True)
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("is_public"), bool):
            raise _validation_error(["body", "is_public"], "Input should be a valid boolean",
                                    "bool_type")
        record["is_public"] = body["is_public"]
        return self._changed(record)

    async def opened(self, request: web.Request) -> web.Response:
        record = await self._record(request, write=False)
        record["opened_at"] = db_timestamp()
        return json_response(None)

    async def tags(self, request: web.Request) -> web.Response:
        await self._seed()
        self.double.current_user(request)
        categories = request.query.getall("categories", [])
        found: set[str] = set()
        for record in self.double.workflows.values():
            summary = _summary(record)
            if categories and summary["category"] not in categories:
                continue
            found.update(t.strip() for t in summary["tags"].split(",") if t.strip())
        return json_response(sorted(found))

    async def counts_by_category(self, request: web.Request) -> web.Response:
        await self._seed()
        self.double.current_user(request)
        counts = {c: 0 for c in request.query.getall("categories", [])}
        for record in self.double.workflows.values():
            category = _summary(record)["category"]
            if category in counts:
                counts[category] += 1
        return json_response(counts)

    async def counts_by_tag(self, request: web.Request) -> web.Response:
        await self._seed()
        self.double.current_user(request)
        counts = {t: 0 for t in request.query.getall("tags", [])}
        for record in self.double.workflows.values():
            tags = _summary(record)["tags"].lower()
            for tag in counts:
                if tag.lower() in tags:
                    counts[tag] += 1
        return json_response(counts)
