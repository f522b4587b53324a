"""Pooled connections: a server that closed one (uvicorn does after an unhandled exception's
500) must not turn the next request into a false "cannot reach InvokeAI".

A small loopback HTTP/1.1 server written here (real sockets) closes connections exactly where
the story needs it; the real InvokeAI shows the same after its own 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from invokeai_client import errors
from invokeai_client._config import SessionOptions, Timeout
from invokeai_client._http import HttpTransport
from invokeai_client._http_wire import REUSED

from .conftest import Peer

pytestmark = pytest.mark.anyio


@dataclass
class ClosingServer:
    """``/boom`` answers 500 and leaves the connection open, but drops (unanswered) any later
    request on it, as uvicorn's closed socket would; ``/arm`` answers 200 and does the same
    to the next request on its connection; ``/drop`` is never answered; else 200."""

    url: str = ""
    seen: list[tuple[int, str]] = field(default_factory=list)  # (connection, path) read
    answered: list[tuple[int, str]] = field(default_factory=list)
    _connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        conn, doomed = self._connections, False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next((int(v) for k, _, v in (ln.partition(": ") for ln in lines)
                               if k.lower() == "content-length"), 0)
                await reader.readexactly(length)
                self.seen.append((conn, path))
                if doomed or path == "/drop":
                    return  # closed without an answer
                if path in ("/slow", "/stall"):
                    await self._trickle(path, reader, writer)
                    return
                status = 500 if path == "/boom" else 200
                doomed = path in ("/boom", "/arm")
                body = json.dumps({"path": path}).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                )
                await writer.drain()
                self.answered.append((conn, path))
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


    async def _trickle(
        self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``/slow``: 8 chunks 0.2 s apart; ``/stall``: one chunk, then nothing until the
        client hangs up."""
        chunk = b"x" * 1000
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 8000\r\n\r\n" + chunk)
        await writer.drain()
        if path == "/stall":
            await reader.read()  # b"" once the client closed the connection
            return
        for _ in range(7):
            await asyncio.sleep(0.2)
            writer.write(chunk)
            await writer.drain()
        self.answered.append((self._connections, path))


@pytest.fixture
async def closing_server() -> AsyncIterator[ClosingServer]:
    state = ClosingServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state
        server.close()


OpenHttp = Callable[..., Awaitable[HttpTransport]]


@pytest.fixture
async def open_http(closing_server: ClosingServer) -> AsyncIterator[OpenHttp]:
    """Opens a transport to the closing server with the given arguments; all are closed when
    the test ends."""
    opened: list[HttpTransport] = []

    async def open_one(**kwargs: Any) -> HttpTransport:
        transport = HttpTransport(closing_server.url, **kwargs)
        opened.append(transport)
        await transport.open()
        return transport

    yield open_one
    for transport in opened:
        await transport.aclose()


@pytest.fixture
async def http(open_http: OpenHttp) -> HttpTransport:
    return await open_http(max_retries=0)


async def test_a_500s_connection_is_not_used_again(
    closing_server: ClosingServer, http: HttpTransport
) -> None:
    with pytest.raises(errors.InternalServerError):
        await http.request("POST", "/boom", json={})
    assert await http.request("POST", "/next", json={}) == {"path": "/next"}
    boom_conn = closing_server.seen[0][0]
    assert [path for conn, path in closing_server.seen if conn == boom_conn] == ["/boom"]


async def test_a_post_read_then_dropped_on_a_reused_connection_is_not_sent_again(
    closing_server: ClosingServer, http: HttpTransport
) -> None:
    """The server read it whole, then closed without an answer: it may have acted on it
    (unknown fate; the enqueue has its own recovery), so the transport does not resend."""
    assert await http.request("POST", "/arm", json={}) == {"path": "/arm"}
    with pytest.raises(errors.ConnectionError, match="cannot reach"):
        await http.request("POST", "/create", json={"n": 1})
    assert [p for _, p in closing_server.seen] == ["/arm", "/create"]


async def test_the_transport_knows_a_pooled_connection_from_a_new_one(
    closing_server: ClosingServer, http: HttpTransport
) -> None:
    """Only a request written into a pooled connection may be stale (sent again when its
    body could not be written); the connector tells which one it got."""
    await http.request("POST", "/one", json={})
    assert not REUSED.get()
    await http.request("POST", "/two", json={})
    assert REUSED.get()
    assert [conn for conn, _ in closing_server.seen] == [1, 1]


async def test_a_post_lost_on_a_fresh_connection_is_not_sent_again(
    closing_server: ClosingServer, http: HttpTransport
) -> None:
    """No answer on a new connection: the server may have acted on it (unknown fate)."""
    with pytest.raises(errors.ConnectionError, match="cannot reach"):
        await http.request("POST", "/drop", json={})
    assert [p for _, p in closing_server.seen] == ["/drop"]


async def test_an_app_session_raising_for_status_still_gets_the_error_tree(
    closing_server: ClosingServer,
) -> None:
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        http = HttpTransport(closing_server.url, max_retries=0,
                             options=SessionOptions(session=session))
        await http.open()
        with pytest.raises(errors.InternalServerError, match="HTTP 500"):
            await http.request("POST", "/boom", json={})
        with pytest.raises(errors.InternalServerError, match="HTTP 500"):
            async with http.stream("GET", "/boom"):
                pass
        await http.aclose()
        assert not session.closed


@pytest.mark.real
async def test_after_a_real_500_the_next_post_reaches_the_server(real_server: Peer) -> None:
    """InvokeAI answers 500 for a relative install source (taken for a repo id) and closes
    the connection; the next POST still works."""
    async with real_server.client() as client:
        for _ in range(3):
            with pytest.raises(errors.InvokeAIError):
                await client.models.install("relative/dir")
            board = await client.boards.create("after-a-500")
            await client.boards.delete(board)


async def _download(http: HttpTransport, path: str) -> bytes:
    async with http.stream("GET", path) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_a_download_that_keeps_arriving_is_not_cut_by_the_total_timeout(
    open_http: OpenHttp,
) -> None:
    """1.4 s of trickling body against a total of 0.5 s: downloads are bounded per read."""
    http = await open_http(options=SessionOptions(timeout=Timeout(total=0.5, read=60)))
    assert await _download(http, "/slow") == b"x" * 8000


async def test_a_stalled_download_says_what_arrived_and_is_not_sent_again(
    closing_server: ClosingServer, open_http: OpenHttp
) -> None:
    http = await open_http(options=SessionOptions(timeout=Timeout(total=60, read=0.5)))
    with pytest.raises(errors.TimeoutError, match="stopped after 1,000 bytes"):
        await _download(http, "/stall")
    assert [p for _, p in closing_server.seen] == ["/stall"]
