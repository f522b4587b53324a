"""WorkflowRepository: load workflows into typed handles, and the server's workflow library."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from ..fields.schema import InvocationSchemas
from ..workflows.definition import WorkflowDefinition
from ..workflows.handle import WorkflowHandle
from ._base import Repository

if TYPE_CHECKING:
    from ..client import AsyncClient

log = logging.getLogger("invokeai_client")

WorkflowSource = str | os.PathLike[str] | Mapping[str, Any] | WorkflowDefinition


class WorkflowRepository(Repository):
    """Workflows of a client (``client.workflows``): load GUI exports as handles typed by the
    server's node schemas, and manage the server's workflow library."""

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
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
                source = f"InvokeAI {(await self._client.server_info()).version}"
            except errors.InvokeAIError:
                source = str(self._client.base_url)
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
        return WorkflowHandle(definition, schemas=schemas, client=self._client)


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
        path = anyio.Path(os.fspath(source))
        try:
            path = await path.expanduser()
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
