"""A hostile InvokeAI stand-in: every route answers with one chosen kind of poison.

The reliability suite points a client at it to check that whatever a broken server, a
misconfigured proxy or an attacker sends, every public call either succeeds or raises an
:class:`~invokeai_client.InvokeAIError` within its deadline, with bounded memory.

.. code-block:: python

    async with HostileServer("gzip_bomb") as server:
        async with AsyncClient(server.url, events=False) as client:
            await client.server_info()          # ResponseTooLargeError, not 1 GiB of RAM

``server.poison`` may be changed between calls. Image routes (``.../full``,
``.../thumbnail``) answer with :data:`PNG` under the ``"image"`` poison, so downloads can be
tested against odd image names.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from typing import Any

from aiohttp import web

__all__ = ["PNG", "POISONS", "HostileServer"]

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
"""A valid 1x1 PNG."""

_WRONG_TYPES: dict[str, Any] = {
    key: value
    for keys, value in (
        (("version", "image_name", "board_id", "board_name", "batch_id", "queue_id", "name",
          "status", "user_id", "token", "key", "hash", "base", "type", "created_at"), [1, 2]),
        (("items", "models", "image_names", "affected_boards", "results", "deleted_images",
          "updated_image_names", "starred_images"), "not a list"),
        (("item_id", "total", "count", "limit", "offset", "width", "height", "image_count",
          "pending", "in_progress", "completed", "failed", "canceled", "enqueued",
          "requested"), {"not": "a number"}),
        (("queue", "processor", "session", "batch", "user", "config", "counts"), "x"),
        (("multiuser_enabled", "setup_required", "starred", "is_intermediate",
          "is_started", "is_processing", "priority"), {"x": []}),
    )
    for key in keys
}

POISONS = (
    "empty_object",
    "empty_array",
    "null",
    "wrong_types",
    "string",
    "deep_json",
    "malformed_json",
    "html",
    "huge",
    "gzip_bomb",
    "redirect_loop",
    "file_redirect",
    "never",
    "reset",
)
"""Every kind of bad answer the server can give (``"image"`` serves :data:`PNG` and the
``"not_image"`` poison a JSON body on image routes)."""

BOMB_SIZE = 1024 * 1024 * 1024
"""Bytes a gzip bomb inflates to (it is about 1 MB on the wire)."""


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """``BOMB_SIZE`` bytes of a JSON string, gzip-compressed (made once, ~1 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"version": "')]
    block = b"0" * (1024 * 1024)
    parts.extend(packer.compress(block) for _ in range(BOMB_SIZE // len(block)))
    parts.append(packer.compress(b'"}'))
    parts.append(packer.flush())
    return b"".join(parts)


class HostileServer:
    """An aiohttp server on loopback whose every route (the socket path included) answers
    with ``poison``; ``hits`` counts requests."""

    def __init__(self, poison: str = "empty_object") -> None:
        self.poison = poison
        self.hits = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HostileServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        image_route = request.path.endswith(("/full", "/thumbnail"))
        poison = self.poison
        if poison == "image" or (poison == "not_image" and not image_route):
            return web.Response(body=PNG, content_type="image/png")
        if poison == "not_image":
            return web.json_response({"detail": "this is JSON, not a PNG"})
        simple = {
            "empty_object": "{}",
            "empty_array": "[]",
            "null": "null",
            "string": '"surprise"',
            "malformed_json": '{"version": "6.14',
            "deep_json": "[" * 200_000 + "]" * 200_000,
        }
        if poison in simple:
            return web.Response(text=simple[poison], content_type="application/json")
        if poison == "wrong_types":
            return web.json_response(_WRONG_TYPES)
        if poison == "html":
            return web.Response(text="<html>not the API</html>", content_type="text/html")
        if poison == "gzip_bomb":
            body = await asyncio.to_thread(gzip_bomb)
            return web.Response(
                body=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if poison == "redirect_loop":
            raise web.HTTPFound(request.path)
        if poison == "file_redirect":
            raise web.HTTPFound("file:///etc/passwd")
        if poison == "never":
            await asyncio.sleep(3600)
        if poison == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPInternalServerError()
        if poison == "huge":
            return await self._endless(request, image_route)
        raise ValueError(f"unknown poison {poison!r}; one of {POISONS}")

    async def _endless(self, request: web.Request, image: bool) -> web.StreamResponse:
        """A JSON string (or a PNG) that never ends, until the client hangs up."""
        kind = "image/png" if image else "application/json"
        response = web.StreamResponse(headers={"Content-Type": kind})
        await response.prepare(request)
        await response.write(PNG[:16] if image else b'{"version": "')
        block = b"0" * (1024 * 1024)
        try:
            while True:
                await response.write(block)
        except (ConnectionError, RuntimeError):
            pass
        return response
