"""AsyncClient: the entry point. It owns one HTTP session and one event stream."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiohttp
from typing_extensions import Unpack

from . import _redact, errors
from ._answers import as_object, parse, reading
from ._checks import check_bool
from ._compat import FEATURES, ServerFeatures, check_supported, format_version
from ._config import Timeout, resolve_connection, session_options
from ._constants import (
    DEFAULT_MAX_DOWNLOAD_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE_ID,
    DEFAULT_TIMEOUT,
)
from ._context import ClientContext
from ._http import HttpTransport
from ._scope import AsyncScope
from .generate import GenerateOptions, Generator
from .repositories._base import check_text
from .repositories.boards import BoardRepository
from .repositories.images import ImageLike, ImageRepository
from .repositories.models import ModelRepository
from .repositories.queue import QueueRepository
from .repositories.workflows import WorkflowRepository
from .runs import BatchRun, RunManager, WorkflowRun
from .types.app import ServerInfo, User
from .types.boards import BoardRef
from .types.images import ImageDTO

log = logging.getLogger("invokeai_client")
_WARNED_VERSIONS: set[str] = set()  # newer-than-tested servers already warned about


class AsyncClient(AsyncScope):
    """An asyncio client for one InvokeAI server.

    Use it as ``async with AsyncClient("http://127.0.0.1:9090") as client:``. Entering opens
    one aiohttp session and one Socket.IO connection (subscribed to ``queue_id``) that every
    repository and run of this client share; leaving closes both and every background task.
    Without ``base_url`` the client uses ``$INVOKEAI_URL`` (else ``http://127.0.0.1:9090``).

    Authentication (multi-user servers, InvokeAI 6.12+): pass ``token=`` or
    ``email=``/``password=`` to log in; without any of them ``$INVOKEAI_TOKEN`` or
    ``$INVOKEAI_EMAIL``/``$INVOKEAI_PASSWORD`` are used when set. The token is sent as a
    bearer on every request and on the socket, replaced whenever the server slides it, and
    never shown in ``repr()``, logs or errors.

    ``timeout`` bounds each HTTP request: seconds (the total), a :class:`Timeout` (connect /
    read / total) or ``None``. ``max_retries`` is how often an idempotent request is retried
    after a transient failure (POSTs such as enqueue are never retried blindly).
    ``max_concurrency`` caps the queue items this client has in flight (submits wait).
    ``headers`` go with every request and the event stream; ``trust_env=True`` takes proxies
    from ``HTTP(S)_PROXY``/``NO_PROXY``; ``ssl_context`` checks TLS your way (private CA,
    client certificates). ``http_session`` is an aiohttp session your application owns: the
    client uses it, adds its timeout and headers per request, and does not close it.

    ``max_response_size`` (default 64 MiB) bounds any answer read into memory and
    ``max_download_size`` (default 8 GiB) any download streamed to a file, both counted after
    decompression: a larger (or endlessly inflating) answer raises
    :class:`~errors.ResponseTooLargeError` instead of filling memory or disk.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        email: str | None = None,
        password: str | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        queue_id: str = DEFAULT_QUEUE_ID,
        verify_ssl: bool = True,
        events: bool = True,
        max_concurrency: int | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_download_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
        headers: Mapping[str, str] | None = None,
        trust_env: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._connection = resolve_connection(base_url, token, email, password)
        base_url, token, email, password = self._connection[:4]
        _check_options(token, email, password, queue_id, events)
        options = session_options(
            timeout=timeout,
            headers=headers,
            trust_env=trust_env,
            verify_ssl=verify_ssl,
            ssl_context=ssl_context,
            http_session=http_session,
        )
        self._http = HttpTransport(
            base_url, token=token, max_retries=max_retries, options=options,
            max_response_size=max_response_size, max_download_size=max_download_size,
        )
        _redact.protect(password)
        self._email = email
        self._password = password  # until the first login: refreshing needs the token alone
        self.queue_id = queue_id
        self._use_events = events
        context = self.context = ClientContext(self._http, queue_id=queue_id, events_enabled=events)
        """What this client's parts share (transport, event stream, router, queue id);
        plumbing for workflow handles and extensions, not needed by most code."""
        self._router = context.router
        self._events = context.stream
        self.queue = QueueRepository(context)
        self.boards = BoardRepository(context)
        self.images = ImageRepository(context, boards=self.boards)
        self.models = ModelRepository(context)
        self.runs = RunManager(
            context, queue=self.queue, image_host=self, max_concurrency=max_concurrency
        )
        self.workflows = WorkflowRepository(context, client=self)
        self._opened = False
        self._generator = Generator(models=self.models, boards=self.boards,
                                    images=self.images, runs=self.runs,
                                    schemas=self.workflows.schemas)

    def __repr__(self) -> str:
        auth = ", authenticated" if self._http.token else ""
        return f"AsyncClient({self.base_url!r}, queue_id={self.queue_id!r}{auth})"

    # -- lifecycle -----------------------------------------------------------------------

    async def _enter(self) -> None:
        await self.open()

    async def _leave(self, exc: BaseException | None) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the HTTP session, log in if asked, and connect the event stream."""
        if self._opened:
            return
        self.runs.reopen()
        await self._http.open()
        try:
            await self._check_version()
            await self._authenticate()
            if self._use_events:
                await self._events.connect()
        except BaseException:
            await self._events.aclose()
            await self._http.aclose()
            raise
        self._opened = True

    async def aclose(self) -> None:
        """Settle every run, then close the event stream and the HTTP session.

        Runs still in flight are canceled on the server (bounded in time) unless they were
        detached, and end with a definite status. Safe to call twice.
        """
        self._opened = False
        await self.runs.aclose()
        await self._events.aclose()
        self._router.close()
        await self._http.aclose()

    @property
    def base_url(self) -> str:
        return self.context.base_url

    @property
    def is_connected(self) -> bool:
        """Whether the event stream is connected right now."""
        return self.context.connected

    # -- auth ----------------------------------------------------------------------------

    async def login(self, email: str, password: str, *, remember_me: bool = False) -> User:
        """Log in to a multi-user server; the token is used from then on."""
        try:
            answer = await self._http.request(
                "POST",
                "/api/v1/auth/login",
                json={"email": email, "password": password, "remember_me": remember_me},
                retry=True,
            )
        except errors.AuthenticationError as exc:
            raise exc.reworded(
                f"login as {email!r} failed: {errors.describe_detail(exc.detail)}",
                kind=errors.AuthenticationError,
            ) from None
        except errors.PermissionDeniedError as exc:
            # Single-user servers answer 403 "Multiuser mode is disabled": no login needed.
            log.info("login skipped: %s", errors.describe_detail(exc.detail))
            return User(user_id="system", is_admin=True)
        with reading():
            token = as_object(answer)["token"]
            if not isinstance(token, str) or not token:
                raise TypeError("no token in the login answer")
            user = parse(User, answer.get("user") or {"user_id": "unknown"})
        self._http.set_token(token)
        return user

    # -- server info ---------------------------------------------------------------------

    async def server_info(self, *, refresh: bool = False) -> ServerInfo:
        """The server's version and whether it runs in multi-user mode (cached).

        The version is read first; servers before 6.12 have no accounts and are single-user
        (their ``/api/v1/auth/status`` does not exist and is not asked).
        """
        return await self.context.server_info(refresh=refresh)

    async def features(self, *, refresh: bool = False) -> ServerFeatures:
        """What this server's InvokeAI version can do (one ``GET /api/v1/app/version``, cached).

        ``(await client.features()).supports("queue_item_ids")``; the SDK's own
        version-dependent calls use it and raise :class:`~invokeai_client.errors.
        EndpointNotAvailableError` naming the version where a feature does not exist.
        """
        return await self.context.features(refresh=refresh)

    async def _check_version(self) -> None:
        """Refuse a server older than the supported range; warn once for a newer one. A
        version that cannot be read here is left to the first call that needs it."""
        try:
            features = await self.features()
        except errors.InvokeAIError as exc:  # a hostile or sick server: the calls will say
            log.debug("could not read the server's version at open: %s", exc)
            return
        warning = check_supported(features.version_text, self.base_url)
        if warning is not None and features.version_text not in _WARNED_VERSIONS:
            _WARNED_VERSIONS.add(features.version_text)
            log.warning("%s", warning)

    async def _authenticate(self) -> None:
        """Log in when asked. Credentials from ``$INVOKEAI_*`` are used on a multi-user
        server only (ignored elsewhere); ``email=``/``password=`` on a server without
        accounts are an error on every version."""
        connection = self._connection
        if connection.from_env or self._email is not None:
            info = await self.server_info()
            if not info.multiuser:
                if connection.from_env:
                    log.debug("%s ignored: InvokeAI %s at %s has no accounts",
                              connection.credentials_source, info.version, self.base_url)
                    self._http.set_token(None)
                    self._email = self._password = None
                    return
                features = await self.features()
                since = format_version(FEATURES["multiuser"].since)
                why = ("multi-user mode is off" if features.supports("multiuser")
                       else f"accounts arrived in InvokeAI {since}")
                raise errors.EndpointNotAvailableError(
                    f"{connection.credentials_source} were given, but InvokeAI {info.version} "
                    f"at {self.base_url} has no accounts ({why}); connect without credentials",
                    method="POST",
                    path="/api/v1/auth/login",
                )
        if self._email is not None and self._password is not None:
            try:
                await self.login(self._email, self._password)
            except errors.AuthenticationError as exc:
                if not connection.from_env:
                    raise
                raise exc.reworded(f"{exc} (credentials from {connection.credentials_source})",
                                   kind=errors.AuthenticationError) from None
            self._password = None
            await self.server_info(refresh=True)  # now with the logged-in user

    # -- one-call generation (invokeai_client.generate) --------------------------------------

    async def generate(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        detach: bool = False,
        **options: Unpack[GenerateOptions],
    ) -> WorkflowRun:
        """Text to image in one call: enqueue the graph the GUI builds for ``model``'s base
        (SD1.x/SD2, SDXL or FLUX) and return the run (``await run`` for the image).

        The keyword ``options`` (:class:`~invokeai_client.generate.GenerateOptions`):
        ``model`` is a key, an exact name or a fragment of exactly one main model's name
        (None: the only one installed); anything ambiguous or missing raises
        :class:`~errors.ModelChoiceError` listing the candidates before anything is
        enqueued. ``negative``, ``width``, ``height``, ``steps``, ``cfg_scale`` and
        ``scheduler``: sizes are rounded as the GUI does (down to a multiple of 8, 16 for
        FLUX; at least 64); unset values come from the model's default settings, then the
        GUI's defaults. ``vae`` and ``loras`` (name -> weight) name models as ``model``
        does. ``board`` is an id, name or Board. ``seed`` None draws one.
        """
        return await self._generator.generate(prompt, options, seed=seed, detach=detach)

    async def generate_batch(
        self,
        prompts: str | Sequence[str],
        *,
        seeds: int | Iterable[int] | None = None,
        detach: bool = False,
        **options: Unpack[GenerateOptions],
    ) -> BatchRun:
        """:meth:`generate` for every prompt with every seed, in ONE enqueue request (the
        same keyword ``options``).

        With ``seeds`` None each prompt gets a drawn seed; the batch's items come in prompt
        order, then seed order (``batch.as_completed()`` / ``await batch``).
        """
        return await self._generator.generate_batch(prompts, options, seeds=seeds, detach=detach)

    async def copy_image_to_board(self, image: ImageLike, board: BoardRef) -> ImageDTO:
        """Save a copy of ``image`` on ``board`` through the server's queue (a new image with
        its own name; the original stays where it is). Returns the copy.

        A path-like image name (:class:`~errors.ValidationError`) or an image the server does
        not have (:class:`~errors.NotFoundError` naming it) fails before anything is enqueued.
        """
        return await self._generator.copy_image_to_board(image, board)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Low-level escape hatch: one REST call with this client's auth, retries, errors."""
        return await self._http.request(method, path, **kwargs)


def _check_options(
    token: str | None, email: str | None, password: str | None, queue_id: str, events: bool
) -> None:
    """Refuse contradicting or malformed client options, naming the argument."""
    if (email is None) != (password is None):
        raise errors.ValidationError(
            "email and password must be given together to log in",
            input="email" if email is None else "password",
            rule="email and password together",
        )
    if token is not None and email is not None:
        raise errors.ValidationError(
            "give either token= or email=/password=, not both",
            input="token",
            rule="one way to authenticate",
        )
    if not isinstance(queue_id, str) or not queue_id:
        raise errors.ValidationError(
            "queue_id must be a non-empty string", input="queue_id", rule="non-empty"
        )
    check_text("queue_id", queue_id, in_path=True)
    for name, value in (("email", email), ("password", password)):
        if value is not None and (not isinstance(value, str) or not value):
            raise errors.ValidationError(
                f"{name} must be a non-empty string", input=name, rule="non-empty text"
            )
    check_bool("events", events)
