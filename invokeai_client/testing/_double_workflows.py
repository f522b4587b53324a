"""The double's workflow area: ``GET /openapi.json`` and the workflow library routes.

``/openapi.json`` serves the compact extract of InvokeAI 6.14.2's invocation schemas shipped
with the SDK (made from a capture of the real document by
``scripts/extract_invocation_schemas.py``), so handles loaded against the double are typed like
against the real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from aiohttp import web

if TYPE_CHECKING:
    from .double import InvokeAIDouble


def install(double: InvokeAIDouble) -> None:
    """Add the workflow routes to ``double``."""
    cache: dict[str, bytes] = {}

    async def openapi(request: web.Request) -> web.Response:
        if "body" not in cache:
            from ..fields.schema import bundled_openapi_text

            text = await anyio.to_thread.run_sync(bundled_openapi_text)
            cache["body"] = text.encode()
        return web.Response(body=cache["body"], content_type="application/json")

    double.route("GET", "/openapi.json", openapi)
