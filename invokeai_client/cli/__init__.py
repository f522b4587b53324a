"""The ``invokeai-client`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator

from .. import AsyncClient, InvokeAIError
from ..testing.local import LocalInvokeAI, LocalServerError


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    """The given URL, or a local InvokeAI started for the duration of the block."""
    if url:
        yield url
        return
    print("starting a local InvokeAI (installed on first use)...", file=sys.stderr)
    with LocalInvokeAI() as server:
        print(f"local InvokeAI ready at {server.url} in {server.started_in:.1f}s",
              file=sys.stderr)
        yield server.url


async def _run(url: str) -> int:
    async with AsyncClient(url) as client:
        info = await client.server_info()
        mode = "multi-user" if info.multiuser else "single-user"
        print(f"InvokeAI {info.version} at {client.base_url} ({mode})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``invokeai-client``."""
    parser = argparse.ArgumentParser(prog="invokeai-client")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the demo workflow against a server")
    run.add_argument("--url", help="server URL; default: start a local InvokeAI")
    args = parser.parse_args(argv)
    try:
        with _server(args.url) as url:
            return asyncio.run(_run(url))
    except (InvokeAIError, LocalServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
