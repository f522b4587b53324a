"""The double's server: aiohttp + python-socketio on loopback, the HTTP fault middleware,
the sockets and the stores every area shares. Areas add their routes with :meth:`route`."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import socketio
from aiohttp import web

from ..._compat import REFERENCE, ServerFeatures
from .auth import Accounts
from .faults import FaultRule, Faults
from .http import INDEX_HTML, json_response
from .records import DoubleImage
from .versions import lacks_route, missing_route, trim_answer

VERSION = "6.14.2"
SHUTDOWN_TIMEOUT = 0.25
"""Seconds :meth:`DoubleApp.stop` lets requests in flight finish before cutting them."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DoubleApp:
    """The plumbing of an :class:`~invokeai_client.testing.InvokeAIDouble`: lifecycle,
    faults, accounts, sockets and the in-memory stores of every area."""

    def __init__(self, *, multiuser: bool = False, version: str = VERSION) -> None:
        self.version = version
        self.features = ServerFeatures(version)
        """What ``version`` has: the double answers as that InvokeAI (see ``versions``)."""
        self.accounts = Accounts(multiuser=multiuser)
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.auth_log: list[str | None] = []
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        self.app = web.Application(middlewares=[self._middleware])
        self.sio.attach(self.app, socketio_path="/ws/socket.io")
        self.users = self.accounts.users
        self.tokens = self.accounts.tokens
        self.sockets: dict[str, dict[str, Any]] = {}
        self.subscribe_log: list[tuple[str, str]] = []
        self.images: dict[str, DoubleImage] = {}
        self.boards: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.model_installs: dict[int, dict[str, Any]] = {}
        self.model_install_overrides: dict[str, dict[str, Any]] = {}
        self.model_install_delay = 0.01
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refresh_tokens = True
        self.socket_connect_delay = 0.0
        """Seconds before a socket is accepted into its namespace (a busy server)."""
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._register_socket_handlers()
        self.route("GET", "/api/v1/app/version", self._version)
        self.accounts.install(self.route)

    @property
    def multiuser(self) -> bool:
        """Whether accounts and tokens are required (InvokeAI's multi-user mode)."""
        return self.accounts.multiuser

    @multiuser.setter
    def multiuser(self, value: bool) -> None:
        self.accounts.multiuser = value

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.port is not None, "double not started"
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        # Stopping cuts requests still in flight (a fault's delay, a long poll) after a
        # moment instead of waiting up to aiohttp's default minute for them.
        self._runner = web.AppRunner(self.app, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sid in list(self.sockets):
            await self.sio.disconnect(sid)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background of the double; cancelled when the double stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- users (multi-user mode) ---------------------------------------------------------

    def add_user(self, email: str, password: str, *, is_admin: bool = False) -> dict[str, Any]:
        """Create an account; the first one is the admin in multi-user mode."""
        return self.accounts.add_user(email, password, is_admin=is_admin)

    def user_for_token(self, token: str | None) -> dict[str, Any] | None:
        return self.accounts.user_for_token(token)

    def current_user(self, request: web.Request) -> dict[str, Any]:
        """The request's user; raises 401 in multi-user mode without a valid token."""
        return self.accounts.current_user(request)

    # -- plumbing ------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/ws/"):
            return await handler(request)
        self.requests.append((request.method, path))
        self.auth_log.append(request.headers.get("Authorization", "")[len("Bearer "):] or None)
        if self.features.version != REFERENCE and lacks_route(self.features, request.method, path):
            return missing_route(request.method)  # an older InvokeAI (``version=``)
        rule = self.faults.match(request.method, path)
        if rule is not None and rule.handled_after is not None:
            await request.read()  # kept on the request for the handler that runs later
            self.spawn(_handle_later(handler, request, rule.handled_after))
        if rule is not None:
            faulty = await _apply_fault(rule, request)
            if faulty is not None:
                return faulty
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            if request.method == "GET":
                # Like InvokeAI: the web UI answers every unknown GET with its index page.
                return web.Response(body=INDEX_HTML, content_type="text/html")
            return json_response({"detail": "Method Not Allowed"}, 405)
        except web.HTTPMethodNotAllowed:
            return json_response({"detail": "Method Not Allowed"}, 405)
        trim_answer(self.features, request.method, path, response)
        if (
            self.multiuser
            and self.refresh_tokens
            and request.method in ("POST", "PUT", "PATCH", "DELETE")
            and response.status < 400
        ):
            user = self.user_for_token(request.headers.get("Authorization", "")[7:])
            if user is not None:
                response.headers["X-Refreshed-Token"] = self.accounts.issue_token(user)
        return response

    def count(self, method: str, path: str) -> int:
        """How many requests the double received for ``method`` and ``path`` (a glob)."""
        return sum(1 for m, p in self.requests if m == method and fnmatch.fnmatchcase(p, path))

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add a route (area modules of the double call this)."""
        self.app.router.add_route(method, path, handler)

    async def _version(self, request: web.Request) -> web.Response:
        return json_response({"version": self.version})

    # -- socket.io -----------------------------------------------------------------------

    def _register_socket_handlers(self) -> None:
        sio = self.sio
        sio.on("connect", self._connect)
        sio.on("disconnect", self._disconnect)
        sio.on("subscribe_queue", self._subscribe_queue)
        sio.on("unsubscribe_queue", self._unsubscribe_queue)
        sio.on("subscribe_bulk_download", self._subscribe_bulk_download)

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> bool:
        if self.socket_connect_delay:
            await asyncio.sleep(self.socket_connect_delay)
        token = auth.get("token") if isinstance(auth, dict) else None
        user = self.user_for_token(token)
        if self.multiuser and user is None:
            return False
        user_id = user["user_id"] if user else "system"
        request = environ.get("aiohttp.request")
        self.sockets[sid] = {
            "user_id": user_id,
            "token": token,
            "rooms": set(),
            "transport": request.transport if request is not None else None,
        }
        await self.sio.enter_room(sid, f"user:{user_id}")
        if user is None or user.get("is_admin"):
            await self.sio.enter_room(sid, "admin")
        return True

    async def _disconnect(self, sid: str, *args: Any) -> None:
        self.sockets.pop(sid, None)

    async def _subscribe_queue(self, sid: str, data: Any) -> None:
        queue_id = str((data or {}).get("queue_id", ""))
        self.subscribe_log.append((sid, queue_id))
        if sid in self.sockets:
            self.sockets[sid]["rooms"].add(queue_id)
        await self.sio.enter_room(sid, queue_id)

    async def _unsubscribe_queue(self, sid: str, data: Any) -> None:
        queue_id = str((data or {}).get("queue_id", ""))
        if sid in self.sockets:
            self.sockets[sid]["rooms"].discard(queue_id)
        await self.sio.leave_room(sid, queue_id)

    async def _subscribe_bulk_download(self, sid: str, data: Any) -> None:
        await self.sio.enter_room(sid, str((data or {}).get("bulk_download_id", "default")))

    async def emit(self, event: str, data: dict[str, Any], *, room: str | None = None) -> None:
        """Send an event to every socket (or one room), with a timestamp like the server."""
        payload = {"timestamp": int(time.time()), **data}
        await self.sio.emit(event, payload, room=room)

    async def drop_sockets(self) -> int:
        """Cut every client connection abruptly (clients should reconnect); returns how many."""
        count = 0
        for sid, info in list(self.sockets.items()):
            transport = info.get("transport")
            if transport is not None and not transport.is_closing():
                transport.abort()  # like a network failure: no close frame
                count += 1
            self.sockets.pop(sid, None)
        return count


async def _handle_later(handler: Handler, request: web.Request, delay: float) -> None:
    """The server side of a gateway fault: the request is handled although its client was
    told it failed."""
    await asyncio.sleep(delay)
    with contextlib.suppress(web.HTTPException):
        await handler(request)


async def _apply_fault(rule: FaultRule, request: web.Request) -> web.StreamResponse | None:
    """What a matching fault rule does to a request (None: carry on to the handler)."""
    if rule.delay:
        await asyncio.sleep(rule.delay)
    if rule.drop_connection:
        transport = request.transport
        if transport is not None:
            transport.close()
        raise web.HTTPInternalServerError()
    if rule.html:
        return web.Response(body=INDEX_HTML, content_type="text/html")
    if rule.status is not None:
        headers = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        return json_response(
            {"detail": f"injected fault {rule.status}"}, rule.status, headers=headers
        )
    return None
