"""The client's one Socket.IO connection to InvokeAI.

It connects over WebSocket only (InvokeAI 6.14's long-polling handshake breaks under gzip),
authenticates with the current bearer token on every (re)connect, joins the queue room after
every connect, parses each frame into a typed event and hands it to the
:class:`~invokeai_client._router.EventRouter` without awaiting, so event order is kept.
Reconnects are automatic; listeners registered with :meth:`EventStream.on_reconnect` run after
each one so that in-flight runs can catch up over REST.

python-engineio hands every message to python-socketio in a task of its own (about a tenth
of the client's CPU per run, more than the SDK's own routing). Socket.IO event frames, the
bulk of the traffic, are instead handled as they are read, in order; every other kind of
frame, and any frame that arrives while one is still deferred, takes the stock path. See
:func:`_handle_events_inline`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.packet
import socketio

from . import errors
from ._constants import RECONNECT_DELAY, RECONNECT_DELAY_MAX, SOCKET_CONNECT_TIMEOUT
from ._http import HttpTransport
from ._router import EventRouter

log = logging.getLogger("invokeai_client")

ReconnectHook = Callable[[], Awaitable[None]]


class EventStream:
    """One authenticated Socket.IO connection, subscribed to one queue."""

    def __init__(self, http: HttpTransport, router: EventRouter, *, queue_id: str) -> None:
        self._http = http
        self._router = router
        self._queue_id = queue_id
        self._sio: socketio.AsyncClient | None = None
        self._connected = asyncio.Event()
        self._reconnect_hooks: list[ReconnectHook] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self.connect_count = 0
        self.disconnect_count = 0
        self.inline_events = False
        """Whether socket.io event frames are handled as they are read (see the module doc)."""

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected

    def on_reconnect(self, hook: ReconnectHook) -> None:
        """Run ``hook`` after every reconnect (not the first connect)."""
        self._reconnect_hooks.append(hook)

    async def connect(self) -> None:
        """Open the connection and wait until the queue room is joined."""
        sio = _SocketClient(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=RECONNECT_DELAY,
            reconnection_delay_max=RECONNECT_DELAY_MAX,
            handle_sigint=False,
            http_session=self._http.session,
            ssl_verify=self._http.verify_ssl,
        )
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        # The router's dispatch is the handler itself: synchronous on purpose, since
        # python-engineio runs each frame in its own task and a handler that awaited before
        # routing could reorder events.
        sio.on("*", self._router.dispatch_raw)
        self.inline_events = _handle_events_inline(sio)
        self._sio = sio
        # One deadline for the whole open (TCP, WebSocket upgrade, namespace, room join): a
        # socket endpoint that never answers is a ConnectionError, not a hang.
        deadline = min(SOCKET_CONNECT_TIMEOUT, self._http.timeout.total or math.inf)
        try:
            await asyncio.wait_for(self._open(sio, deadline), deadline)
        except BaseException as exc:
            self._sio = None
            await _quietly_disconnect(sio)
            if isinstance(exc, errors.InvokeAIError) or not isinstance(exc, Exception):
                raise
            if isinstance(exc, asyncio.TimeoutError):
                message = f"no answer within {deadline:g} s"
            else:
                message = str(exc) or exc.__class__.__name__
            raise errors.ConnectionError(
                f"cannot open the event stream at {self._http.origin}"
                f"{self._http.socketio_path}: {message}"
            ) from exc

    async def _open(self, sio: socketio.AsyncClient, deadline: float) -> None:
        try:
            await sio.connect(
                self._http.origin,
                socketio_path=self._http.socketio_path,
                transports=["websocket"],
                headers=dict(self._http.options.headers),
                auth=self._auth,
                wait_timeout=deadline,
            )
        except socketio.exceptions.ConnectionError as exc:
            message = str(exc) or exc.__class__.__name__
            if "namespaces failed" in message:  # InvokeAI refuses a socket only for its auth
                if self._http.token is None:
                    raise errors.AuthenticationError(
                        "the event stream was refused: this InvokeAI server requires a login "
                        "(pass token=... or email=/password= to AsyncClient)",
                    ) from exc
                raise errors.AuthenticationError(
                    "the event stream refused the token: it is invalid or expired "
                    "(log in again, or pass a fresh token=...)",
                ) from exc
            raise
        await self._connected.wait()

    def _auth(self) -> dict[str, str] | None:
        # Evaluated on every (re)connect, so a refreshed token is used after a drop.
        token = self._http.token
        return {"token": token} if token else None

    async def _on_connect(self) -> None:
        assert self._sio is not None
        self.connect_count += 1
        await self._sio.emit("subscribe_queue", {"queue_id": self._queue_id})
        await self._sio.emit("subscribe_bulk_download", {"bulk_download_id": "default"})
        log.debug("event stream connected (#%d), queue %s joined", self.connect_count,
                  self._queue_id)
        self._connected.set()
        if self.connect_count > 1:
            for hook in self._reconnect_hooks:
                task = asyncio.ensure_future(hook())
                self._hook_tasks.add(task)
                task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("reconnect catch-up failed: %s", task.exception())

    def _on_disconnect(self, *args: Any) -> None:
        self.disconnect_count += 1
        self._connected.clear()
        log.debug("event stream disconnected (%s)", args[0] if args else "")
        # Wake every waiter so it can decide to poll REST while the socket is down.
        self._router.wake_all()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until the socket is (re)connected; False on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Disconnect and stop reconnecting; waits for catch-up hooks to end."""
        sio, self._sio = self._sio, None
        if sio is not None:
            await _quietly_disconnect(sio)
        for task in list(self._hook_tasks):
            task.cancel()
        if self._hook_tasks:
            await asyncio.gather(*self._hook_tasks, return_exceptions=True)
        self._connected.clear()


class _SocketClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, except that its own reconnect attempts wait as long as our
    first connect for the server to accept the namespace (stock: 1 s, which a busy server
    can miss attempt after attempt)."""

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("wait_timeout", SOCKET_CONNECT_TIMEOUT)
        await super().connect(*args, **kwargs)


def _handle_events_inline(sio: socketio.AsyncClient) -> bool:
    """Have ``sio`` handle socket.io EVENT frames in its read loop, not in a task each.

    Stock python-engineio starts a task for every message it reads; python-socketio then
    decodes it and calls the (synchronous) router. Here an EVENT frame (``2[...]``, text) is
    passed to python-socketio's message handler at once, in the read loop, which keeps the
    order and saves a task per frame. Binary frames are dropped (:data:`_BINARY_KINDS`). Everything
    else (connect, disconnect, acks, pings) goes the stock way, and so does every frame that
    arrives while a deferred one has not run yet, so frames are never reordered. Only this
    client's own engine.io object is changed; when python-engineio is not shaped as
    expected, nothing is and False is returned.
    """
    parts = _engineio_parts(sio)
    if parts is None:
        return False
    eio, stock_receive, stock_start, handlers, message = parts
    # The task of the last frame that took the stock path: later event frames wait for it.
    deferred: list[asyncio.Future[Any] | None] = [None]
    capturing = [False]

    def start_background_task(target: Any, *args: Any, **kwargs: Any) -> Any:
        task = stock_start(target, *args, **kwargs)
        if capturing[0]:
            deferred[0] = task
        return task

    async def receive_packet(pkt: Any) -> None:
        if getattr(pkt, "packet_type", None) == message:
            data = getattr(pkt, "data", None)
            kind = data[:1] if isinstance(data, str) else None
            if kind == "2":
                last = deferred[0]
                handler = handlers.get("message")
                if (last is None or last.done()) and sio._binary_packet is None and handler:
                    try:
                        await handler(data)
                    except Exception:  # a bad frame must not end the read loop
                        log.exception("handling a socket.io event frame failed")
                    return
            elif kind in _BINARY_KINDS or isinstance(data, (bytes, bytearray)):
                _drop_binary(data)
                return
        capturing[0] = True
        try:
            await stock_receive(pkt)
        finally:
            capturing[0] = False

    eio._receive_packet = receive_packet
    eio.start_background_task = start_background_task
    return True


_BINARY_KINDS = ("5", "6")
"""Binary socket.io frames: the header of a BINARY_EVENT / BINARY_ACK (``5...`` /
``6...``), besides attachments (bytes). InvokeAI sends none; python-socketio would hold
attachments until the count a header claims (up to 10 digits) arrives, and read every later
frame, events included, as one more attachment."""


_dropped = [0]


def _drop_binary(data: object) -> None:
    _dropped[0] += 1
    if _dropped[0] == 1:  # once per process: a hostile server must not flood the log
        log.warning(
            "dropped a binary socket.io frame (%d bytes): InvokeAI sends none; later ones "
            "are dropped silently", len(data) if isinstance(data, (str, bytes, bytearray)) else 0
        )


def _engineio_parts(
    sio: socketio.AsyncClient,
) -> tuple[Any, Callable[..., Any], Callable[..., Any], dict[str, Any], Any] | None:
    """What :func:`_handle_events_inline` hooks: the engine.io client, its stock
    ``_receive_packet`` and ``start_background_task``, its handlers and the MESSAGE packet
    type; None when python-engineio/socketio are not shaped as expected."""
    eio = getattr(sio, "eio", None)
    stock_receive = getattr(eio, "_receive_packet", None)
    stock_start = getattr(eio, "start_background_task", None)
    handlers = getattr(eio, "handlers", None)
    message = getattr(engineio.packet, "MESSAGE", None)
    if (
        eio is None
        or not callable(stock_receive)
        or not callable(stock_start)
        or not isinstance(handlers, dict)
        or message is None
        or not hasattr(sio, "_binary_packet")
    ):
        return None
    return eio, stock_receive, stock_start, handlers, message


async def _quietly_disconnect(sio: socketio.AsyncClient) -> None:
    try:
        await asyncio.wait_for(sio.disconnect(), 5)
    except Exception as exc:  # closing must not fail the caller
        log.debug("socket disconnect raised %s", exc)
    try:
        # Make sure the reconnection task (if any) is gone before we return.
        task = getattr(sio, "_reconnect_task", None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    except Exception as exc:  # pragma: no cover
        log.debug("reconnect task cleanup raised %s", exc)
