"""The web example for real: uvicorn serves examples/fastapi_app.py, headless Chromium opens
its page and must show the progress and then the final image; and a client that goes away
cancels its queue item under FastAPI/uvicorn and under aiohttp (invokeai_client.web)."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from invokeai_client import AsyncClient
from invokeai_client.testing.local import free_port

from .conftest import Peer
from .webapp import CHROMIUM, EXAMPLES, chromium_page, fastapi_app

pytestmark = pytest.mark.anyio


def slow_with_previews(peer: Peer, delay: float = 0.1) -> None:
    """On the double: each node takes ``delay`` s in 4 progress steps with JPEG previews,
    as a denoising node on a real server with models does."""
    if peer.double is not None:
        faults = peer.double.queue.faults
        faults.node_delay = delay
        faults.progress_steps = 4
        faults.progress_preview = (48, 48)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (scripts/test.sh installs it)")
async def test_the_page_shows_progress_then_the_final_image(peer: Peer, tmp_path: Path) -> None:
    slow_with_previews(peer)
    async with fastapi_app(peer.url) as base, chromium_page(
        f"{base}/?seed=5", tmp_path / "profile"
    ) as page:
        await page.wait_for("document.body.dataset.state === 'completed'")
        state: dict[str, Any] = await page.evaluate("({...document.body.dataset})")
        size = await page.evaluate(
            "[document.getElementById('result').naturalWidth,"
            " document.getElementById('result').naturalHeight]"
        )
        shot = await page.call("Page.captureScreenshot", format="png")
    assert size == [160, 120]  # the final image, loaded from /images/<name>
    assert float(state["progress"]) == 1.0
    assert int(state["events"]) >= 5  # node events arrived live over SSE
    if peer.double is not None:  # the real server sends previews only while denoising
        assert int(state["previews"]) >= 1
    screenshot = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
    screenshot.save(tmp_path / "page.png")
    assert screenshot.size[0] > 0


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (scripts/test.sh installs it)")
async def test_the_page_shows_real_step_previews_of_a_diffusion_model(
    real_server: Peer, real_models: dict[str, Any], tmp_path: Path
) -> None:
    """A text-to-image run of a tiny random-weight SD1 model on the real InvokeAI: its
    denoising steps arrive as previews on the page, then the final image."""
    async with fastapi_app(real_server.url) as base, chromium_page(
        f"{base}/?seed=3&prompt=a%20lighthouse&model=tiny-sd1", tmp_path / "profile"
    ) as page:
        await page.wait_for("document.body.dataset.state === 'completed'")
        state: dict[str, Any] = await page.evaluate("({...document.body.dataset})")
        preview_src = await page.evaluate("document.getElementById('preview').src")
        size = await page.evaluate("document.getElementById('result').naturalWidth")
    assert int(state["previews"]) >= 1  # real step previews from the real server
    assert preview_src.startswith("data:image/")
    assert size == 160


async def _item_status(url: str, item_id: int) -> str:
    async with AsyncClient(url, events=False) as client:
        return (await client.queue.get(item_id)).status


async def _wait_canceled(url: str, item_id: int) -> None:
    statuses: list[str] = []

    async def check() -> None:
        statuses.append(await _item_status(url, item_id))

    deadline = asyncio.get_running_loop().time() + 60  # only a guard: it ends at once
    while True:
        await check()
        if statuses[-1] in ("canceled", "completed", "failed"):
            break
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert statuses[-1] == "canceled", statuses


async def test_fastapi_stream_disconnect_cancels_the_item(double: Peer) -> None:
    slow_with_previews(double, delay=1.0)  # ~5 s of work: the reader leaves long before
    async with fastapi_app(double.url) as base, aiohttp.ClientSession(base) as http:
        async with http.post("/generate", json={"seed": 3}) as answer:
            assert answer.status == 202
            run = await answer.json()
        async with http.get(run["events"]) as stream:
            assert stream.content_type == "text/event-stream"
            async for line in stream.content:
                if line.startswith(b"event: progress"):
                    break  # the item runs: leave now
        await _wait_canceled(double.url, run["item_id"])


async def test_fastapi_a_run_whose_stream_is_never_opened_is_canceled_and_forgotten(
    double: Peer,
) -> None:
    async with double.client() as client:
        await client.queue.pause()  # the item stays pending until something cancels it
    async with fastapi_app(double.url, STREAM_WAIT="0.2") as base, aiohttp.ClientSession(
        base
    ) as http:
        async with http.post("/generate", json={"seed": 3}) as answer:
            assert answer.status == 202
            run = await answer.json()
        await _wait_canceled(double.url, run["item_id"])  # nobody opened its stream
        async with http.get(run["events"]) as stream:
            assert stream.status == 404  # and the app forgot it


async def _ask_and_leave(method: str, url: str) -> None:
    """Ask for a render and hang up before the answer (the client times out after 1 s)."""
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        with pytest.raises(asyncio.TimeoutError):
            async with http.request(method, url):
                pass


async def _only_item(url: str) -> int:
    async with AsyncClient(url, events=False) as client:
        items = [item async for item in client.queue.list()]
    assert len(items) == 1
    return items[0].item_id


async def test_fastapi_render_disconnect_cancels_the_item(double: Peer) -> None:
    slow_with_previews(double, delay=1.0)
    async with fastapi_app(double.url) as base:
        await _ask_and_leave("POST", f"{base}/render?seed=4")
        await _wait_canceled(double.url, await _only_item(double.url))


def _web_service_module() -> Any:
    spec = importlib.util.spec_from_file_location("web_service", EXAMPLES / "web_service.py")
    assert spec is not None
    assert spec.loader is not None
    sys.path.insert(0, str(EXAMPLES))  # for its "from _server import ..."
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


async def test_aiohttp_render_disconnect_cancels_the_item(double: Peer) -> None:
    slow_with_previews(double, delay=1.0)
    # Default aiohttp settings: handlers are NOT cancelled when their client leaves.
    runner = web.AppRunner(_web_service_module().make_app(double.url))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await _ask_and_leave("GET", f"http://127.0.0.1:{port}/render?seed=2")
        await _wait_canceled(double.url, await _only_item(double.url))
    finally:
        await runner.cleanup()
