"""WorkflowRepository: load workflows into typed handles, and the server's workflow library."""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from .._answers import as_object, integer, page_total, parse, parse_list, reading, strings
from .._checks import check_choice
from .._paging import Page, Paginator, check_page_size, offset_page
from ..fields.schema import InvocationSchemas
from ..types.workflows import WorkflowRecord, WorkflowSummary
from ..workflows._gui_json import REQUIRED_WORKFLOW_STRINGS
from ..workflows.definition import WorkflowDefinition
from ..workflows.handle import WorkflowHandle
from ._base import Repository, naming

if TYPE_CHECKING:
    from .._context import ClientContext
    from ..workflows._client import WorkflowClient

log = logging.getLogger("invokeai_client")

WorkflowSource = str | os.PathLike[str] | Mapping[str, Any] | WorkflowDefinition
WORKFLOWS = "/api/v1/workflows"
CATEGORIES = ("user", "default")
ORDER_BY = ("name", "created_at", "updated_at", "opened_at", "is_public")


class WorkflowRepository(Repository):
    """Workflows of a client (``client.workflows``): load GUI exports as handles typed by the
    server's node schemas, and manage the server's workflow library."""

    def __init__(self, context: ClientContext, *, client: WorkflowClient) -> None:
        super().__init__(context)
        self._owner = client  # what the handles it loads submit through
        self._schemas: InvocationSchemas | None = None
        self._schemas_lock = asyncio.Lock()

    # -- schemas ---------------------------------------------------------------------------

    async def schemas(self, *, refresh: bool = False) -> InvocationSchemas:
        """The server's node catalog from ``GET /openapi.json``, fetched once per client.

        A server without the document (or one that answers with its web page) gives an empty
        catalog: handles then infer types from the workflow's values.
        """
        if self._schemas is not None and not refresh:
            return self._schemas
        async with self._schemas_lock:
            if self._schemas is not None and not refresh:
                return self._schemas
            try:
                document = await self._http.request("GET", "/openapi.json")
            except errors.EndpointNotAvailableError:
                log.warning("the server has no /openapi.json; workflow types are inferred")
                document = {}
            try:
                source = f"InvokeAI {(await self._context.server_info()).version}"
            except errors.InvokeAIError:
                source = self._context.base_url
            self._schemas = InvocationSchemas.from_openapi(
                document if isinstance(document, Mapping) else {}, source=source
            )
            return self._schemas

    # -- loading ---------------------------------------------------------------------------

    async def load(self, source: WorkflowSource, *, typed: bool = True) -> WorkflowHandle:
        """A handle for a workflow: a path, a dict, a JSON string or a definition.

        Files are read off the event loop. A string that starts with ``{`` is JSON; any other
        string is a path. With ``typed`` (the default) the handle's fields come from the
        server's schemas (fetched once per client); ``typed=False`` infers them from values.
        """
        definition = await load_definition(source)
        schemas = await self.schemas() if typed else None
        return WorkflowHandle(definition, schemas=schemas, client=self._owner)

    # -- the library -----------------------------------------------------------------------

    def list(
        self,
        *,
        category: str | Iterable[str] | None = None,
        query: str | None = None,
        tags: str | Iterable[str] | None = None,
        is_public: bool | None = None,
        has_been_opened: bool | None = None,
        order_by: str = "name",
        direction: str = "ASC",
        page_size: int = 50,
    ) -> Paginator[WorkflowSummary]:
        """The server's saved workflows: ``async for`` gives every one, page after page;
        ``await`` gives the first page.

        ``category`` is ``"user"`` and/or ``"default"`` (InvokeAI's built-in workflows);
        ``query`` matches name, description and tags; ``tags`` keeps workflows having any of
        them; ``is_public`` filters shared workflows (InvokeAI 6.13+).
        """
        categories = _categories("category", category)
        check_choice("order_by", order_by, ORDER_BY)
        check_choice("direction", direction, ("ASC", "DESC"))
        check_page_size(page_size)
        params: dict[str, Any] = {
            "categories": categories,
            "tags": _strings("tags", tags),
            "query": query,
            "is_public": is_public,
            "has_been_opened": has_been_opened,
            "order_by": order_by,
            "direction": direction,
        }

        async def fetch(offset: int, limit: int) -> Page[WorkflowSummary]:
            answer = await self._http.request(
                "GET",
                f"{WORKFLOWS}/",
                params={**params, "page": offset // limit, "per_page": limit},
            )
            items = parse_list(WorkflowSummary, answer, key="items", missing_ok=True)
            total = page_total(answer)
            with reading():
                page = integer(as_object(answer).get("page", offset // limit))
            return offset_page(
                items,
                offset=int(page) * limit,
                limit=limit,
                total=total if isinstance(total, int) else None,
            )

        return Paginator(fetch, page_size=page_size, key=lambda w: w.workflow_id)

    async def get_record(self, workflow_id: str) -> WorkflowRecord:
        """A saved workflow's record (with its JSON); NotFoundError naming the id if none."""
        _check_id(workflow_id)
        with naming("workflow", workflow_id, action="read"):
            answer = await self._http.request("GET", f"{WORKFLOWS}/i/{workflow_id}")
        return parse(WorkflowRecord, answer)

    async def get(self, workflow_id: str, *, typed: bool = True) -> WorkflowHandle:
        """A saved workflow as a handle, like :meth:`load` (NotFoundError naming the id)."""
        record = await self.get_record(workflow_id)
        return await self.load(record.workflow, typed=typed)

    async def create(self, workflow: WorkflowSource | WorkflowHandle) -> WorkflowRecord:
        """Save a workflow in the library as a new user workflow (a handle is saved with its
        current values). Returns the record with the server's new ``workflow_id``."""
        data = await _workflow_json(workflow)
        data.pop("id", None)
        _check_savable(data)
        await self._fit_format(data)
        answer = await self._http.request("POST", f"{WORKFLOWS}/", json={"workflow": data})
        return parse(WorkflowRecord, answer)

    async def update(
        self, workflow: WorkflowSource | WorkflowHandle, *, workflow_id: str | None = None
    ) -> WorkflowRecord:
        """Replace a saved workflow's JSON. The id is ``workflow_id`` or the workflow's own
        ``id`` (as loaded from the library)."""
        data = await _workflow_json(workflow)
        target = workflow_id or data.get("id")
        if not isinstance(target, str) or not target:
            raise errors.ValidationError(
                "update needs workflow_id= (the workflow has no library id)",
                input="workflow_id",
                rule="library id",
            )
        data["id"] = target
        _check_savable(data)
        await self._fit_format(data)
        with naming("workflow", target, action="update"):
            answer = await self._http.request(
                "PATCH", f"{WORKFLOWS}/i/{target}", json={"workflow": data}, retry=True
            )
        return parse(WorkflowRecord, answer)

    async def _fit_format(self, data: dict[str, Any]) -> None:
        """A ``meta.version`` 4 workflow saved on a server before 6.13: that version's GUI
        reads only 3.0.0, which 4.0.0 differs from only by connector nodes. Without them it
        is saved as 3.0.0; with them, EndpointNotAvailableError names the version."""
        meta = data.get("meta")
        if not isinstance(meta, dict) or not str(meta.get("version", "")).startswith("4."):
            return
        features = await self._context.features()
        if features.supports("workflow_meta_v4"):
            return
        nodes = data.get("nodes") or []
        if any(isinstance(node, dict) and node.get("type") == "connector" for node in nodes):
            features.require("workflow_meta_v4")
        data["meta"] = {**meta, "version": "3.0.0"}

    async def delete(self, workflow_id: str) -> None:
        """Delete a saved workflow (NotFoundError naming the id if there is none)."""
        _check_id(workflow_id)
        with naming("workflow", workflow_id, action="delete"):
            await self._http.request("DELETE", f"{WORKFLOWS}/i/{workflow_id}", expect="none")

    async def set_public(self, workflow_id: str, is_public: bool) -> WorkflowRecord:
        """Share a workflow with every user, or make it private (InvokeAI 6.13+)."""
        _check_id(workflow_id)
        if not isinstance(is_public, bool):
            raise errors.ValidationError(
                f"is_public must be True or False, got {is_public!r}",
                input="is_public",
                rule="boolean",
            )
        await self._require("workflow_is_public")
        with naming("workflow", workflow_id, action="share"):
            answer = await self._http.request(
                "PATCH",
                f"{WORKFLOWS}/i/{workflow_id}/is_public",
                json={"is_public": is_public},
                retry=True,
            )
        return parse(WorkflowRecord, answer)

    async def tags(self, *, category: str | Iterable[str] | None = None) -> builtins.list[str]:
        """Every tag used by saved workflows (InvokeAI 6.10+)."""
        params = {"categories": _categories("category", category)}
        await self._require("workflow_tags")
        answer = await self._http.request(
            "GET", f"{WORKFLOWS}/tags", params=params
        )
        return strings(answer)

    async def counts_by_category(self, categories: Iterable[str] = CATEGORIES) -> dict[str, int]:
        """How many saved workflows each category has."""
        answer = await self._http.request(
            "GET",
            f"{WORKFLOWS}/counts_by_category",
            params={"categories": _categories("categories", categories)},
        )
        with reading():
            return {str(k): integer(v) for k, v in (answer or {}).items()}


async def load_definition(source: WorkflowSource) -> WorkflowDefinition:
    """A :class:`WorkflowDefinition` from a path, a dict, JSON text or a definition."""
    import anyio

    if isinstance(source, WorkflowDefinition):
        return source
    if isinstance(source, Mapping):
        return WorkflowDefinition.from_dict(source)
    if isinstance(source, bytes):
        return WorkflowDefinition.from_json(source)
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        return WorkflowDefinition.from_json(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            # os.path.expanduser leaves "~unknown-user" alone (pathlib would raise)
            path = anyio.Path(await anyio.to_thread.run_sync(os.path.expanduser, os.fspath(source)))
            text = await path.read_bytes()
        except OSError as exc:
            raise errors.WorkflowError(
                f"cannot read workflow file {str(path)!r}: {exc.strerror or exc}"
            ) from None
        try:
            return WorkflowDefinition.from_json(text)
        except errors.WorkflowError as exc:
            raise errors.WorkflowError(f"{path}: {exc}") from None
    raise errors.WorkflowError(
        "a workflow source is a path, a dict, a JSON string or a WorkflowDefinition, got "
        f"{type(source).__name__}"
    )


async def _workflow_json(workflow: WorkflowSource | WorkflowHandle) -> dict[str, Any]:
    if isinstance(workflow, WorkflowHandle):
        return workflow.to_workflow_dict()
    return (await load_definition(workflow)).to_dict()


def _check_savable(data: Mapping[str, Any]) -> None:
    """What the server's workflow validation requires, checked before the request."""
    for key in REQUIRED_WORKFLOW_STRINGS:
        if not isinstance(data.get(key), str):
            raise errors.ValidationError(
                f'a saved workflow needs a string {key!r} (use "" for none)',
                input=key,
                rule="string",
            )
    if not isinstance(data.get("exposedFields", []), list):
        raise errors.ValidationError(
            "exposedFields must be a list", input="exposedFields", rule="list"
        )
    meta = data.get("meta")
    category = meta.get("category", "user") if isinstance(meta, Mapping) else None
    if category not in CATEGORIES:
        raise errors.ValidationError(
            f"meta.category must be one of {CATEGORIES}, got {category!r}",
            input="meta.category",
            rule="user or default",
        )


def _check_id(workflow_id: Any) -> None:
    if not isinstance(workflow_id, str) or not workflow_id.strip() or "/" in workflow_id:
        raise errors.ValidationError(
            f"a workflow id is a non-empty string without '/', got {workflow_id!r}",
            input="workflow_id",
            rule="workflow id",
        )


def _strings(name: str, value: str | Iterable[str] | None) -> builtins.list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    items = builtins.list(value) if isinstance(value, Iterable) else [value]
    if not all(isinstance(v, str) for v in items):
        raise errors.ValidationError(
            f"{name} must be a string or strings, got {value!r}", input=name, rule="strings"
        )
    return items


def _categories(name: str, value: str | Iterable[str] | None) -> builtins.list[str] | None:
    categories = _strings(name, value)
    for category in categories or []:
        if category not in CATEGORIES:
            raise errors.ValidationError(
                f"category must be one of {CATEGORIES}, got {category!r}",
                input=name,
                rule="user or default",
            )
    return categories
