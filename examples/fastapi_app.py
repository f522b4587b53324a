"""A FastAPI service with live progress: POST /generate, then Server-Sent Events of the run.

Start it with uvicorn (``pip install "invokeai-client[web]"``)::

    INVOKEAI_URL=http://127.0.0.1:9090 uvicorn fastapi_app:app --app-dir examples --port 8000
    python examples/fastapi_app.py [INVOKEAI_URL] [--port 8000]     # the same, via uvicorn.run

and open http://127.0.0.1:8000/ (``/?seed=7`` starts at once; ``/?prompt=a+cat&model=NAME`` makes
a text-to-image run with an installed model). The page shows the run's progress bar, the step
previews while the server sends them (diffusion models do; the bundled model-free workflow
has none) and then the final image.

- ``POST /generate`` ``{"seed": 7}`` enqueues one run of the model-free ``noise-sweep``
  workflow, ``{"prompt": "a cat", "model": null, "steps": 8}`` one text-to-image run
  (``client.generate``), and answers at once: ``{"item_id", "events": "/runs/<id>/events",
  "nodes"}``. A run whose stream is not opened within ``$STREAM_WAIT`` seconds (30 by
  default: the browser left, a script never asked) is canceled and forgotten, unless it was
  detached.
- ``GET /runs/<id>/events``: the run's typed events as SSE (``invokeai_client.web.
  sse_events``); if the browser leaves before the run ends, the run is canceled on the
  server (Starlette cancels the stream, the helper cancels the item).
- ``POST /render?seed=7``: waits and answers with the PNG; a client that disconnects while
  waiting cancels the run (``invokeai_client.web.result_or_cancel``).
- ``GET /images/<name>``: an image of the server, proxied.

One ``AsyncClient`` (made from ``$INVOKEAI_URL``/``$INVOKEAI_TOKEN``) serves the app's
whole life; each request works on its own copy of the workflow handle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from invokeai_client import (
    AsyncClient,
    InvokeAIError,
    RunCanceledError,
    ValidationError,
    WorkflowRun,
)
from invokeai_client.web import result_or_cancel, sse_events
from invokeai_client.workflows import examples

PAGE = Path(__file__).with_name("static") / "progress.html"
STREAM_WAIT = float(os.environ.get("STREAM_WAIT", "30"))
"""Seconds a run waits for its event stream to be opened before it is canceled."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncClient() as client:  # $INVOKEAI_URL, $INVOKEAI_TOKEN...
        app.state.client = client
        app.state.workflow = await client.workflows.load(examples.path("noise-sweep"))
        app.state.runs = {}
        app.state.expiries = set()
        yield  # leaving settles every run still in flight
        for task in app.state.expiries:
            task.cancel()


app = FastAPI(title="invokeai-client demo", lifespan=lifespan)


class GenerateRequest(BaseModel):
    seed: int = Field(default=1, ge=0)
    width: int = Field(default=160, ge=16, le=1024)
    height: int = Field(default=120, ge=16, le=1024)
    prompt: str | None = Field(default=None, max_length=2000)
    model: str | None = None
    steps: int = Field(default=8, ge=1, le=100)


async def submit(request: Request, body: GenerateRequest) -> WorkflowRun:
    if body.prompt is not None:  # text to image with an installed model
        client: AsyncClient = request.app.state.client
        try:
            return await client.generate(
                body.prompt, model=body.model, seed=body.seed, steps=body.steps,
                width=max(64, body.width), height=max(64, body.height),
            )
        except ValidationError as exc:
            raise HTTPException(422, str(exc)) from None
    wf = request.app.state.workflow.copy()  # one handle per request
    try:
        wf.set("Seed", body.seed).set("Output width", body.width)
        wf.set("Output height", body.height)
    except ValidationError as exc:
        raise HTTPException(422, str(exc)) from None
    return await wf.submit()


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


@app.post("/generate", status_code=202)
async def generate(request: Request, body: GenerateRequest) -> dict[str, Any]:
    run = await submit(request, body)
    state = request.app.state
    state.runs[run.item_id] = run
    expiry = asyncio.create_task(expire(state.runs, run))
    state.expiries.add(expiry)  # held until done, so the task is not garbage-collected
    expiry.add_done_callback(state.expiries.discard)
    return {"item_id": run.item_id, "events": f"/runs/{run.item_id}/events",
            "nodes": run.batch.node_count}


async def expire(runs: dict[int, WorkflowRun], run: WorkflowRun) -> None:
    """Forget ``run`` if its stream was not opened within STREAM_WAIT seconds, and cancel
    it unless detached: nobody will watch it (the dict would grow for the app's life)."""
    await asyncio.sleep(STREAM_WAIT)
    if runs.get(run.item_id) is run:
        del runs[run.item_id]
        if not run.detached:
            with contextlib.suppress(InvokeAIError):
                await run.cancel()


@app.get("/runs/{item_id}/events")
async def events(request: Request, item_id: int) -> StreamingResponse:
    run: WorkflowRun | None = request.app.state.runs.pop(item_id, None)
    if run is None:
        raise HTTPException(404, f"no run {item_id} waits for its stream here")
    stream = sse_events(run, image_url=lambda name: f"/images/{name}")
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@app.post("/render")
async def render(request: Request, seed: int = 1) -> Response:
    run = await submit(request, GenerateRequest(seed=seed))
    try:
        result = await result_or_cancel(run, request)
    except RunCanceledError:
        return Response(status_code=499)  # the client left; nobody reads this
    return Response(await result.image.download(), media_type="image/png")


@app.get("/images/{name}")
async def image(request: Request, name: str) -> Response:
    client: AsyncClient = request.app.state.client
    return Response(await client.images.download(name), media_type="image/png")


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", nargs="?", help="the InvokeAI server ($INVOKEAI_URL)")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    if options.url:
        os.environ["INVOKEAI_URL"] = options.url
    uvicorn.run(app, host="127.0.0.1", port=options.port)
