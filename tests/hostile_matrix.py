"""The hostile server matrix, run as its own process so its peak memory can be measured.

``python -m tests.hostile_matrix`` points a client at :class:`HostileServer` with every poison
and makes every public read call (and the ones that write with ids it cannot know), printing
one JSON line per call: the poison, the call, the outcome (``ok`` or the exception class) and
whether it is inside the error tree, then a last line with the process's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from invokeai_client import AsyncClient, InvokeAIError
from invokeai_client.testing.hostile import POISONS, HostileServer, gzip_bomb

CALL_TIMEOUT = 0.5
"""The client's per-request timeout in the matrix."""

RESPONSE_LIMIT = 8 * 1024 * 1024
"""The client's max_response_size in the matrix (the default, 64 MiB, is tested once)."""

HANG_GUARD = 30.0
"""A call still running after this long counts as a hang."""

Call = Callable[[AsyncClient], Awaitable[Any]]


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


def _calls(folder: str) -> dict[str, Call]:
    return {
        "server_info": lambda c: c.server_info(refresh=True),
        "queue.status": lambda c: c.queue.status(),
        "queue.get": lambda c: c.queue.get(1),
        "queue.current": lambda c: c.queue.current(),
        "queue.batch_status": lambda c: c.queue.batch_status("b1"),
        "queue.item_ids": lambda c: c.queue.item_ids(),
        "queue.list": lambda c: _collect(c.queue.list()),
        "queue.cancel": lambda c: c.queue.cancel(1),
        "queue.prune": lambda c: c.queue.prune(),
        "queue.pause": lambda c: c.queue.pause(),
        "queue.cache_status": lambda c: c.queue.cache_status(),
        "runs.attach": lambda c: c.runs.attach(1),
        "boards.list": lambda c: _collect(c.boards.list()),
        "boards.all": lambda c: c.boards.all(),
        "boards.get": lambda c: c.boards.get("b1"),
        "boards.image_names": lambda c: c.boards.image_names("b1"),
        "images.get": lambda c: c.images.get("x.png"),
        "images.list": lambda c: _collect(c.images.list()),
        "images.metadata": lambda c: c.images.metadata("x.png"),
        "images.workflow": lambda c: c.images.workflow("x.png"),
        "images.download": lambda c: c.images.download("x.png"),
        "images.download_to": lambda c: c.images.download("x.png", folder, overwrite=True),
        "images.delete": lambda c: c.images.delete("x.png"),
        "models.list": lambda c: c.models.list(),
        "models.get": lambda c: c.models.get("k1"),
        "models.install_jobs": lambda c: c.models.install_jobs(),
        "workflows.list": lambda c: _collect(c.workflows.list()),
        "workflows.get": lambda c: c.workflows.get("w1"),
        "workflows.schemas": lambda c: c.workflows.schemas(refresh=True),
    }


async def _one(client: AsyncClient, call: Call) -> tuple[str, bool, float]:
    started = time.perf_counter()
    outcome, inside = await _outcome(client, call)
    return outcome, inside, round(time.perf_counter() - started, 3)


async def _outcome(client: AsyncClient, call: Call) -> tuple[str, bool]:
    try:
        await asyncio.wait_for(call(client), HANG_GUARD)
    except InvokeAIError as exc:
        return type(exc).__name__, True
    except asyncio.TimeoutError:
        return "hang", False
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:120]}", False
    return "ok", True


async def _open_socket(server: HostileServer) -> tuple[str, bool, float]:
    async def connect() -> None:
        async with AsyncClient(server.url, timeout=CALL_TIMEOUT, max_retries=0):
            pass

    return await _one(None, lambda _: connect())  # type: ignore[arg-type]


async def main() -> None:
    await asyncio.to_thread(gzip_bomb)  # made once, before the clock of any call starts
    with tempfile.TemporaryDirectory() as folder:
        calls = _calls(folder)
        for poison in POISONS:
            async with HostileServer(poison) as server:
                async with AsyncClient(
                    server.url, events=False, timeout=CALL_TIMEOUT, max_retries=0,
                    max_response_size=RESPONSE_LIMIT, max_download_size=RESPONSE_LIMIT,
                ) as client:
                    for name, call in calls.items():
                        outcome, inside, took = await _one(client, call)
                        print(json.dumps({"poison": poison, "call": name, "outcome": outcome,
                                          "inside": inside, "seconds": took}), flush=True)
                outcome, inside, took = await _open_socket(server)
                print(json.dumps({"poison": poison, "call": "open with events",
                                  "outcome": outcome, "inside": inside, "seconds": took}),
                      flush=True)
    print(json.dumps({"peak_rss": peak_rss()}), flush=True)


def peak_rss() -> int:
    """This process's own peak resident set size in bytes.

    Linux's ``VmHWM``, not ``getrusage``: ``ru_maxrss`` of a process started by
    ``subprocess`` (vfork + exec) starts at its parent's peak, so a matrix run under a
    pytest process that once held 500 MB reported 500 MB although it never used them.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
