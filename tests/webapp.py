"""Real processes for the web tests: the FastAPI example under uvicorn, and headless Chromium
driven over the Chrome DevTools protocol (with aiohttp, no extra driver)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from invokeai_client.testing.local import free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=900,900",
]


async def _wait_http(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):  # up to ~2 minutes on a loaded machine
            if process.returncode is not None:
                raise AssertionError(f"{what} exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as answer:
                    if answer.status < 500:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not answer at {url}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def fastapi_app(invokeai_url: str, **settings: str) -> AsyncIterator[str]:
    """examples/fastapi_app.py under uvicorn on a free port (``settings``: more environment
    variables); yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKEAI_")}
    env.update(settings, INVOKEAI_URL=invokeai_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_http(f"{base}/", process, "uvicorn")
        yield base
    finally:
        await _stop(process)


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message_id = self._next_id
        await self.ws.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        async for message in self.ws:
            data = json.loads(message.data)
            if data.get("id") == message_id:
                if "error" in data:
                    raise AssertionError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result
        raise AssertionError("the DevTools connection closed")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 90.0) -> Any:
        """Poll ``expression`` in the page until it is truthy (fails after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                state = await self.evaluate("JSON.stringify(document.body.dataset)")
                raise AssertionError(f"{expression} stayed false; page state {state}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def chromium_page(url: str, profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium (a fresh profile) showing ``url``."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
        url, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        for _ in range(1200):  # up to ~2 minutes on a loaded machine
            if active.exists() and active.read_text().strip():
                break
            if process.returncode is not None:
                raise AssertionError(f"chromium exited with {process.returncode}")
            await asyncio.sleep(0.1)
        port = active.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            for _ in range(1200):  # up to ~2 minutes on a loaded machine
                async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    pages = [t for t in await answer.json() if t.get("type") == "page"]
                if pages:
                    break
                await asyncio.sleep(0.1)
            assert pages, "chromium opened no page"
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        await _stop(process)
