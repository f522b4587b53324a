"""A small HTTP + WebSocket gateway for tests: an auth proxy, a forward proxy, a TLS front.

It forwards every request (REST and the Socket.IO WebSocket) to one upstream server. With
``require_header`` it refuses requests without that header (403), as an API gateway in
front of a server does. Requests in absolute form (``GET http://host/path``), as clients
send them to a forward proxy from ``HTTP_PROXY``, are forwarded too and counted in
``proxied``. With ``ssl_context`` it serves HTTPS.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
from aiohttp import web

HOP_HEADERS = {
    "host", "connection", "upgrade", "keep-alive", "proxy-connection", "transfer-encoding",
    "content-length", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-extensions", "sec-websocket-accept",
}


class Gateway:
    def __init__(
        self,
        upstream: str,
        *,
        require_header: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.require_header = require_header
        self.ssl_context = ssl_context
        self.seen: list[tuple[str, str]] = []
        self.refused = 0
        self.proxied = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Gateway:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._runner is not None
        assert self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.url.is_absolute() and request.raw_path.startswith("http"):
            self.proxied += 1
        self.seen.append((request.method, request.path))
        if self.require_header is not None:
            name, value = self.require_header
            if request.headers.get(name) != value:
                self.refused += 1
                return web.json_response({"detail": f"missing {name}"}, status=403)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        target = self.upstream + request.path_qs
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, target, headers)
        assert self._session is not None
        async with self._session.request(
            request.method, target, headers=headers, data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=answer.status, headers=out, body=body)

    async def _websocket(
        self, request: web.Request, target: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        assert self._session is not None
        client_ws = web.WebSocketResponse()
        await client_ws.prepare(request)
        async with self._session.ws_connect(target, headers=headers) as server_ws:

            async def pump(src: Any, dst: Any) -> None:
                async for msg in src:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await dst.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)
                    else:
                        break
                await dst.close()

            tasks = [
                asyncio.ensure_future(pump(client_ws, server_ws)),
                asyncio.ensure_future(pump(server_ws, client_ws)),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return client_ws
