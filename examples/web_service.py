"""A web service that renders on request: one AsyncClient for the app's whole life.

Runnable with aiohttp.web (already a dependency of the SDK): it serves ``GET /render?seed=N``
on a free local port, calls itself a few times at once, saves the PNGs and stops.

A client that disconnects while its render runs gets its queue item canceled on the
server: aiohttp does not cancel a handler when its client leaves (unless the app runs with
``handler_cancellation=True``), so the handler awaits the run with
``invokeai_client.web.result_or_cancel(run, request)``, which watches the connection and
cancels the item when it closes. The FastAPI version, with a live progress page, is
``fastapi_app.py``; docs/web.md says what each framework needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from _server import OUT, invokeai_url
from aiohttp import web

from invokeai_client import AsyncClient, RunCanceledError, ValidationError, WorkflowHandle
from invokeai_client.testing.local import free_port
from invokeai_client.web import result_or_cancel
from invokeai_client.workflows import examples

CLIENT = web.AppKey("client", AsyncClient)
WORKFLOW = web.AppKey("workflow", WorkflowHandle)
URL = web.AppKey("invokeai_url", str)


async def invokeai(app: web.Application) -> AsyncIterator[None]:
    """The app's one client: opened at startup, closed (runs settled) at shutdown."""
    async with AsyncClient(app[URL]) as client:
        app[CLIENT] = client
        app[WORKFLOW] = await client.workflows.load(examples.path("noise-sweep"))
        yield


async def render(request: web.Request) -> web.Response:
    wf = request.app[WORKFLOW].copy()  # one handle per request: no shared values
    try:
        wf.set("Seed", int(request.query.get("seed", "0")))
    except (ValueError, ValidationError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    run = await wf.submit()
    try:
        result = await result_or_cancel(run, request)  # cancels the item if the client left
    except RunCanceledError:
        return web.Response(status=499)  # nobody reads this: the client is gone
    png = await result.image.download()
    return web.Response(body=png, content_type="image/png")


def make_app(invokeai_server: str) -> web.Application:
    app = web.Application()
    app[URL] = invokeai_server
    app.cleanup_ctx.append(invokeai)
    app.router.add_get("/render", render)
    return app


async def main(url: str) -> None:
    runner = web.AppRunner(make_app(url))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:

            async def call(seed: str) -> None:
                async with http.get("/render", params={"seed": seed}) as response:
                    body = await response.read()
                if response.status != 200:
                    print(f"GET /render?seed={seed} -> {response.status}: {body.decode()}")
                    return
                path = OUT / f"web-seed{seed}.png"
                await asyncio.to_thread(_write, path, body)
                print(f"GET /render?seed={seed} -> 200 {response.content_type} {path}")

            await asyncio.gather(*(call(seed) for seed in ("1", "2", "3", "-1", "abc")))
    finally:
        await runner.cleanup()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


if __name__ == "__main__":
    with invokeai_url() as url:
        asyncio.run(main(url))
