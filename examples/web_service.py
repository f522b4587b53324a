"""A web service that renders on request: one AsyncClient for the app's whole life.

Runnable with aiohttp.web (already a dependency of the SDK): it serves ``GET /render?seed=N``
on a free local port, calls itself a few times at once, saves the PNGs and stops.

The same pattern in FastAPI (``pip install fastapi uvicorn``)::

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with AsyncClient(INVOKEAI_URL) as client:      # one session, one socket
            app.state.client = client
            app.state.workflow = await client.workflows.load("flow.json")
            yield                                             # runs settle on shutdown

    app = FastAPI(lifespan=lifespan)

    @app.get("/render")
    async def render(seed: int) -> Response:
        wf = app.state.workflow.copy()                        # one handle per request
        try:
            wf.set("Seed", seed)
        except ValidationError as exc:
            raise HTTPException(400, str(exc))
        result = await (await wf.submit())
        return Response(await result.image.download(), media_type="image/png")

If the HTTP client goes away, the framework cancels the handler's task, and cancelling a
task that awaits a run cancels its queue item on the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from _server import OUT, invokeai_url
from aiohttp import web

from invokeai_client import AsyncClient, ValidationError, WorkflowHandle
from invokeai_client.testing.local import free_port
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
    result = await (await wf.submit())
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
