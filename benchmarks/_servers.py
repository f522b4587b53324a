"""Peers for benchmarks, each in its own process so client CPU can be measured alone."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from invokeai_client.testing.local import LocalInvokeAI

_DOUBLE_MAIN = """
import asyncio, sys
from invokeai_client.testing import InvokeAIDouble

async def main():
    async with InvokeAIDouble() as double:
        print(double.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@contextlib.contextmanager
def double_process() -> Iterator[tuple[str, int]]:
    """The in-process double, hosted in a child process (instant node execution): its URL
    and process id."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOUBLE_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the double did not start")
        yield url, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def real_process(*, fast_gc: bool = True) -> Iterator[tuple[str, int | None]]:
    """A real InvokeAI 6.14.2 (the gc.freeze launcher unless fast_gc=False): its URL and
    process id."""
    with LocalInvokeAI(fast_gc=fast_gc) as server:
        yield server.url, server.process.pid if server.process is not None else None
