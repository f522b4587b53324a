"""The yardstick: a minimal hand-written aiohttp + python-socketio enqueue-and-wait loop.

It does the least any correct client must do for one run: choose a batch id, enqueue one
graph, and wait for the item's terminal status event, keeping the value the sum node
produced (from ``invocation_complete``). No retries, no REST reconciliation, no typing, no
dedupe beyond a dict: what our SDK must stay close to while doing all of that.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import socketio

TERMINAL = {"completed", "failed", "canceled"}


def add_graph(a: int, b: int) -> dict[str, Any]:
    """The benchmark graph: two integers and their sum (model-free, executes for real)."""
    return {
        "nodes": {
            "a": {"id": "a", "type": "integer", "value": a, "use_cache": False},
            "b": {"id": "b", "type": "integer", "value": b, "use_cache": False},
            "sum": {"id": "sum", "type": "add", "use_cache": False},
        },
        "edges": [
            {"source": {"node_id": "a", "field": "value"},
             "destination": {"node_id": "sum", "field": "a"}},
            {"source": {"node_id": "b", "field": "value"},
             "destination": {"node_id": "sum", "field": "b"}},
        ],
    }


class MinimalClient:
    """One session, one socket, a dict of futures keyed by batch id."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiters: dict[str, asyncio.Future[Any]] = {}
        self.values: dict[str, Any] = {}
        self.session: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None

    async def __aenter__(self) -> MinimalClient:
        self.session = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(handle_sigint=False, http_session=self.session)
        self.sio.on("invocation_complete", self._on_complete)
        self.sio.on("queue_item_status_changed", self._on_status)
        await self.sio.connect(self.url, socketio_path="/ws/socket.io", transports=["websocket"])
        await self.sio.emit("subscribe_queue", {"queue_id": "default"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.sio is not None
        assert self.session is not None
        await self.sio.disconnect()
        await self.session.close()

    def _on_complete(self, data: dict[str, Any]) -> None:
        if data.get("invocation_source_id") == "sum":
            self.values[data["batch_id"]] = data["result"]["value"]

    def _on_status(self, data: dict[str, Any]) -> None:
        if data.get("status") in TERMINAL:
            future = self.waiters.get(data["batch_id"])
            if future is not None and not future.done():
                future.set_result((data["status"], self.values.pop(data["batch_id"], None)))

    async def run(self, a: int, b: int) -> int:
        """Enqueue a+b and wait for its value."""
        assert self.session is not None
        batch_id = str(uuid.uuid4())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[batch_id] = future
        body = {"batch": {"batch_id": batch_id, "graph": add_graph(a, b), "runs": 1},
                "prepend": False}
        async with self.session.post(
            f"{self.url}/api/v1/queue/default/enqueue_batch", json=body
        ) as response:
            response.raise_for_status()
            await response.read()
        try:
            status, value = await future
        finally:
            del self.waiters[batch_id]
        if status != "completed":
            raise RuntimeError(f"run {batch_id} ended {status}")
        return int(value)
