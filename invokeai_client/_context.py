"""The small context that the parts of one client share.

An :class:`~invokeai_client.AsyncClient` builds one :class:`ClientContext` and hands it to its
repositories and its run manager. It holds what is truly shared: the HTTP transport, the
socket (event stream), the event router, the queue id, and the cached server information.
Anything else a part needs (a sibling repository, the board resolver) it names in its own
constructor, so no part holds the whole client or reaches into its private attributes.
"""

from __future__ import annotations

import contextlib
import logging

from . import errors
from ._answers import parse
from ._compat import ServerFeatures
from ._http import HttpTransport
from ._router import EventRouter
from ._socket import EventStream
from .types.app import AppVersion, AuthStatus, ServerInfo, User

log = logging.getLogger("invokeai_client")

__all__ = ["ClientContext"]


class ClientContext:
    """HTTP transport, event stream, event router and queue id of one client.

    ``events_enabled`` says whether the client uses the event stream at all (``events=``);
    :attr:`connected` whether it is connected right now. :meth:`features` and
    :meth:`server_info` read the server's version and mode once and cache them.
    """

    __slots__ = (
        "_features", "_server_info", "events_enabled", "http", "queue_id", "router", "stream"
    )

    def __init__(
        self,
        http: HttpTransport,
        *,
        queue_id: str,
        events_enabled: bool = True,
        router: EventRouter | None = None,
    ) -> None:
        self.http = http
        self.queue_id = queue_id
        self.events_enabled = events_enabled
        self.router = router if router is not None else EventRouter()
        self.stream = EventStream(http, self.router, queue_id=queue_id)
        self._server_info: ServerInfo | None = None
        self._features: ServerFeatures | None = None

    def __repr__(self) -> str:
        return f"<ClientContext {str(self.http.base_url)!r} queue_id={self.queue_id!r}>"

    @property
    def base_url(self) -> str:
        return str(self.http.base_url)

    @property
    def connected(self) -> bool:
        """Whether the event stream is connected right now."""
        return self.stream.connected

    @property
    def queue_path(self) -> str:
        """The REST prefix of this client's queue (``/api/v1/queue/<queue_id>``)."""
        return f"/api/v1/queue/{self.queue_id}"

    async def features(self, *, refresh: bool = False) -> ServerFeatures:
        """What the server's InvokeAI version can do (one ``GET /api/v1/app/version``, cached)."""
        if self._features is None or refresh:
            answer = await self.http.request("GET", "/api/v1/app/version")
            text = parse(AppVersion, answer).version
            self.http.server_version = text
            self._features = ServerFeatures(text)
        return self._features

    async def server_info(self, *, refresh: bool = False) -> ServerInfo:
        """The server's version and whether it runs in multi-user mode (cached); servers
        before 6.12 have no accounts and are single-user (auth/status is not asked there)."""
        if self._server_info is not None and not refresh:
            return self._server_info
        http = self.http
        features = await self.features(refresh=refresh)
        status = AuthStatus()
        if features.supports("multiuser"):
            # A build without the auth router counts as single-user.
            with contextlib.suppress(errors.EndpointNotAvailableError, errors.NotFoundError):
                status = parse(AuthStatus, await http.request("GET", "/api/v1/auth/status"))
        user: User | None = None
        if status.multiuser_enabled and http.token:
            try:
                user = parse(User, await http.request("GET", "/api/v1/auth/me"))
            except errors.APIError as exc:
                log.debug("could not read the current user: %s", exc)
        self._server_info = ServerInfo(
            version=features.version_text,
            multiuser=status.multiuser_enabled,
            setup_required=status.setup_required,
            user=user,
        )
        return self._server_info
