"""An in-process InvokeAI double for tests: aiohttp + python-socketio, same protocol.

It speaks the REST routes and Socket.IO events of InvokeAI 6.14 that the SDK uses, keeps its
state in memory, and has switches for the faults a real server shows only rarely::

    async with InvokeAIDouble() as double:
        double.faults.add("/api/v1/queue/*/status", status=503, times=2, retry_after=0.1)
        async with AsyncClient(double.url) as client:
            ...
        await double.drop_sockets()          # every client connection is cut

Everything it does, the real server does too; tests run against both wherever they can.
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from invokeai_client._compat import REFERENCE, ServerFeatures

from ._double_versions import lacks_route, missing_route, trim_answer

if TYPE_CHECKING:
    from ._double_queue import SessionQueue

VERSION = "6.14.2"

AREAS: tuple[str, ...] = ("boards", "images", "models", "queue", "workflows")
"""Modules ``invokeai_client.testing._double_<area>`` whose ``install(double)`` adds routes."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultRule:
    """One injected fault: requests matching ``path`` (a glob) and ``method`` misbehave."""

    path: str
    method: str | None = None
    status: int | None = None
    times: int | None = 1
    retry_after: float | str | None = None
    delay: float = 0.0
    html: bool = False
    drop_connection: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class Faults:
    """The fault switches of a double; rules apply in the order they were added."""

    rules: list[FaultRule] = field(default_factory=list)

    def add(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = None,
        times: int | None = 1,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        html: bool = False,
        drop_connection: bool = False,
    ) -> FaultRule:
        """Make matching requests fail (``status``), stall (``delay`` seconds), answer with
        the web UI page (``html``) or lose the connection; ``times=None`` means forever."""
        rule = FaultRule(path, method, status, times, retry_after, delay, html, drop_connection)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def match(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                return rule
        return None


_SECOND: list[Any] = [-1, ""]


def db_timestamp() -> str:
    """Now, as InvokeAI's SQLite records write it: ``"YYYY-MM-DD HH:MM:SS.mmm"`` in UTC."""
    now = time.time()
    second = int(now)
    if second != _SECOND[0]:  # formatting a date is slow; do it once a second
        _SECOND[0] = second
        _SECOND[1] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return f"{_SECOND[1]}.{int((now - second) * 1000):03d}"


@dataclass
class DoubleImage:
    """One image the double holds: its record (the fields of InvokeAI's ImageDTO) and PNG bytes.

    Every area of the double shares ``InvokeAIDouble.images`` (name -> record): the queue adds
    the images its nodes save, the image routes serve and change them.
    """

    image_name: str
    data: bytes
    width: int
    height: int
    image_origin: str = "internal"
    image_category: str = "general"
    is_intermediate: bool = False
    session_id: str | None = None
    node_id: str | None = None
    board_id: str | None = None
    starred: bool = False
    metadata: dict[str, Any] | None = None
    workflow: str | None = None
    graph: str | None = None
    user_id: str = "system"
    created_at: str = field(default_factory=db_timestamp)
    updated_at: str = field(default_factory=db_timestamp)
    deleted_at: str | None = None


INDEX_HTML = b"<!doctype html><html><head><title>Invoke</title></head><body></body></html>"


def json_response(data: Any, status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json", **kwargs
    )


def error(status: int, detail: Any) -> web.HTTPException:
    """An HTTP error with FastAPI's ``{"detail": ...}`` body."""
    exc = web.HTTPException(text=json.dumps({"detail": detail}), content_type="application/json")
    exc.set_status(status)
    return exc


def missing(loc: list[Any], input: Any = None) -> web.HTTPException:
    """FastAPI's 422 for a required parameter or body field that was not sent."""
    return error(422, [{"type": "missing", "loc": loc, "msg": "Field required", "input": input}])


def is_owner_or_admin(user: dict[str, Any], owner_id: str | None) -> bool:
    """Whether ``user`` (from :meth:`InvokeAIDouble.current_user`) may act on what
    ``owner_id`` owns: InvokeAI's rule of the owner or an admin."""
    return bool(user.get("is_admin")) or owner_id == user["user_id"]


class InvokeAIDouble:
    """A fake InvokeAI server on 127.0.0.1 for tests (see the module docstring)."""

    queue: SessionQueue
    """The session queue and its processor; ``queue.faults`` holds its fault switches."""

    def __init__(self, *, multiuser: bool = False, version: str = VERSION) -> None:
        self.version = version
        self.features = ServerFeatures(version)
        """What ``version`` has: the double answers as that InvokeAI (see _double_versions)."""
        self.multiuser = multiuser
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.auth_log: list[str | None] = []
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        self.app = web.Application(middlewares=[self._middleware])
        self.sio.attach(self.app, socketio_path="/ws/socket.io")
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
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
        self._register_routes()
        for area in AREAS:
            module = importlib.import_module(f"invokeai_client.testing._double_{area}")
            module.install(self)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.port is not None, "double not started"
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> InvokeAIDouble:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])
        return self

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

    async def __aenter__(self) -> InvokeAIDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background of the double; cancelled when the double stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- models --------------------------------------------------------------------------

    def add_model(
        self,
        name: str,
        *,
        base: str = "sd-1",
        type: str = "main",
        format: str = "checkpoint",
        key: str | None = None,
        hash: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Install a model record (no weights) as the real server would describe it."""
        from ._double_models import add_model

        return add_model(self, name, base=base, type=type, format=format, key=key, hash=hash,
                         **fields)

    # -- workflows -----------------------------------------------------------------------

    def add_workflow(
        self, workflow: dict[str, Any], *, category: str = "user", user_id: str = "system"
    ) -> dict[str, Any]:
        """Save a workflow in the library (``category="default"``: a built-in one)."""
        from ._double_workflows import add_workflow

        return add_workflow(self, workflow, category=category, user_id=user_id)

    # -- users (multi-user mode) ---------------------------------------------------------

    def add_user(self, email: str, password: str, *, is_admin: bool = False) -> dict[str, Any]:
        """Create an account; the first one is the admin in multi-user mode."""
        user = {
            "user_id": secrets.token_hex(8),
            "email": email,
            "display_name": email.split("@")[0],
            "is_admin": is_admin,
            "is_active": True,
            "password": password,
        }
        self.users[email] = user
        return user

    def _issue_token(self, user: dict[str, Any]) -> str:
        token = f"double.{secrets.token_urlsafe(24)}"
        self.tokens[token] = user["user_id"]
        return token

    def user_for_token(self, token: str | None) -> dict[str, Any] | None:
        user_id = self.tokens.get(token or "")
        return next((u for u in self.users.values() if u["user_id"] == user_id), None)

    def current_user(self, request: web.Request) -> dict[str, Any]:
        """The request's user; raises 401 in multi-user mode without a valid token."""
        if not self.multiuser:
            return {"user_id": "system", "is_admin": True, "email": None}
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise error(401, "Authentication required")
        user = self.user_for_token(header[len("Bearer "):])
        if user is None:
            raise error(401, "Invalid or expired authentication token")
        return user

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
        if rule is not None:
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
                response.headers["X-Refreshed-Token"] = self._issue_token(user)
        return response

    def count(self, method: str, path: str) -> int:
        """How many requests the double received for ``method`` and ``path`` (a glob)."""
        return sum(1 for m, p in self.requests if m == method and fnmatch.fnmatchcase(p, path))

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add a route (area modules of the double call this)."""
        self.app.router.add_route(method, path, handler)

    # -- socket.io -----------------------------------------------------------------------

    def _register_socket_handlers(self) -> None:
        sio = self.sio

        @sio.event  # type: ignore[untyped-decorator]
        async def connect(sid: str, environ: Any, auth: Any = None) -> bool:
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
            await sio.enter_room(sid, f"user:{user_id}")
            if user is None or user.get("is_admin"):
                await sio.enter_room(sid, "admin")
            return True

        @sio.event  # type: ignore[untyped-decorator]
        async def disconnect(sid: str, *args: Any) -> None:
            self.sockets.pop(sid, None)

        @sio.event  # type: ignore[untyped-decorator]
        async def subscribe_queue(sid: str, data: Any) -> None:
            queue_id = str((data or {}).get("queue_id", ""))
            self.subscribe_log.append((sid, queue_id))
            if sid in self.sockets:
                self.sockets[sid]["rooms"].add(queue_id)
            await sio.enter_room(sid, queue_id)

        @sio.event  # type: ignore[untyped-decorator]
        async def unsubscribe_queue(sid: str, data: Any) -> None:
            queue_id = str((data or {}).get("queue_id", ""))
            if sid in self.sockets:
                self.sockets[sid]["rooms"].discard(queue_id)
            await sio.leave_room(sid, queue_id)

        @sio.event  # type: ignore[untyped-decorator]
        async def subscribe_bulk_download(sid: str, data: Any) -> None:
            await sio.enter_room(sid, str((data or {}).get("bulk_download_id", "default")))

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

    # -- routes --------------------------------------------------------------------------

    def _register_routes(self) -> None:
        self.route("GET", "/api/v1/app/version", self._version)
        self.route("GET", "/api/v1/auth/status", self._auth_status)
        self.route("POST", "/api/v1/auth/login", self._login)
        self.route("GET", "/api/v1/auth/me", self._me)

    async def _version(self, request: web.Request) -> web.Response:
        return json_response({"version": self.version})

    async def _auth_status(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "setup_required": self.multiuser and not self.users,
                "multiuser_enabled": self.multiuser,
                "strict_password_checking": False,
                "admin_email": None,
            }
        )

    async def _login(self, request: web.Request) -> web.Response:
        if not self.multiuser:
            raise error(403, "Multiuser mode is disabled. Authentication is not required.")
        body = await request.json()
        user = self.users.get(body.get("email", ""))
        if user is None or user["password"] != body.get("password"):
            raise error(401, "Incorrect email or password")
        public = {k: v for k, v in user.items() if k != "password"}
        return json_response(
            {"token": self._issue_token(user), "user": public, "expires_in": 86400}
        )

    async def _me(self, request: web.Request) -> web.Response:
        if not self.multiuser:
            raise error(401, "Missing authentication credentials")
        user = self.current_user(request)
        return json_response({k: v for k, v in user.items() if k != "password"})
