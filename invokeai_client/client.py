"""AsyncClient: the entry point. It owns one HTTP session and one event stream."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from . import errors
from ._checks import check_bool
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_QUEUE_ID, DEFAULT_TIMEOUT
from ._http import HttpTransport
from ._router import EventRouter
from ._socket import EventStream
from .generate import Generator
from .repositories._base import check_text
from .repositories.boards import BoardRepository
from .repositories.images import ImageLike, ImageRepository
from .repositories.models import ModelRepository
from .repositories.queue import QueueRepository
from .repositories.workflows import WorkflowRepository
from .runs import BatchRun, RunManager, WorkflowRun
from .types.app import AuthStatus, ServerInfo, User
from .types.boards import BoardRef
from .types.images import ImageDTO
from .types.model_configs import ModelConfig

log = logging.getLogger("invokeai_client")


class AsyncClient:
    """An asyncio client for one InvokeAI server.

    Use it as ``async with AsyncClient("http://127.0.0.1:9090") as client:``. Entering opens
    one aiohttp session and one Socket.IO connection (subscribed to ``queue_id``) that every
    repository and run of this client share; leaving closes both and every background task.

    Authentication (multi-user servers, InvokeAI 6.12+): pass ``token=`` or
    ``email=``/``password=`` to log in. The token is sent as a bearer on every request and
    on the socket, replaced whenever the server slides it, and never shown in ``repr()``,
    logs or errors.

    ``timeout`` bounds each HTTP request; ``max_retries`` is how often an idempotent request
    is retried after a transient failure (POSTs such as enqueue are never retried blindly).
    ``max_concurrency`` caps the queue items this client has in flight (submits wait).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:9090",
        *,
        token: str | None = None,
        email: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        queue_id: str = DEFAULT_QUEUE_ID,
        verify_ssl: bool = True,
        events: bool = True,
        max_concurrency: int | None = None,
    ) -> None:
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
        self._http = HttpTransport(
            base_url, token=token, timeout=timeout, max_retries=max_retries, verify_ssl=verify_ssl
        )
        self._email = email
        self._password = password
        self.queue_id = queue_id
        self._use_events = events
        self._router = EventRouter()
        self._events = EventStream(self._http, self._router, queue_id=queue_id)
        self.runs = RunManager(self, max_concurrency=max_concurrency)
        self._server_info: ServerInfo | None = None
        self.boards = BoardRepository(self)
        self.images = ImageRepository(self)
        self.models = ModelRepository(self)
        self.queue = QueueRepository(self)
        self._opened = False
        self.workflows = WorkflowRepository(self)
        self._generator = Generator(self)

    def __repr__(self) -> str:
        auth = ", authenticated" if self._http.token else ""
        return f"AsyncClient({str(self._http.base_url)!r}, queue_id={self.queue_id!r}{auth})"

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the HTTP session, log in if asked, and connect the event stream."""
        if self._opened:
            return
        self.runs.reopen()
        await self._http.open()
        try:
            if self._email is not None and self._password is not None:
                await self.login(self._email, self._password)
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
        await self._http.aclose()

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def is_connected(self) -> bool:
        """Whether the event stream is connected right now."""
        return self._events.connected

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
        self._http.set_token(answer["token"])
        return User.model_validate(answer.get("user") or {"user_id": "unknown"})

    # -- server info ---------------------------------------------------------------------

    async def server_info(self, *, refresh: bool = False) -> ServerInfo:
        """The server's version and whether it runs in multi-user mode (cached)."""
        if self._server_info is not None and not refresh:
            return self._server_info
        version = await self._http.request("GET", "/api/v1/app/version")
        self._http.server_version = str(version.get("version", "unknown"))
        try:
            status = AuthStatus.model_validate(
                await self._http.request("GET", "/api/v1/auth/status")
            )
        except errors.EndpointNotAvailableError:
            status = AuthStatus()  # servers before 6.12 have no auth: single-user
        user: User | None = None
        if status.multiuser_enabled and self._http.token:
            try:
                user = User.model_validate(await self._http.request("GET", "/api/v1/auth/me"))
            except errors.APIError as exc:
                log.debug("could not read the current user: %s", exc)
        self._server_info = ServerInfo(
            version=self._http.server_version,
            multiuser=status.multiuser_enabled,
            setup_required=status.setup_required,
            user=user,
        )
        return self._server_info

    # -- one-call generation (invokeai_client.generate) --------------------------------------

    async def generate(
        self,
        prompt: str,
        *,
        model: str | ModelConfig | None = None,
        negative: str = "",
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        seed: int | None = None,
        cfg_scale: float | None = None,
        scheduler: str | None = None,
        vae: str | ModelConfig | None = None,
        board: BoardRef | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Text to image in one call: enqueue the graph the GUI builds for ``model``'s base
        (SD1.x/SD2, SDXL or FLUX) and return the run (``await run`` for the image).

        ``model`` is a key, an exact name or a fragment of exactly one main model's name
        (None: the only one installed); anything ambiguous or missing raises
        :class:`~errors.ModelChoiceError` listing the candidates before anything is
        enqueued. Sizes are rounded as the GUI does (down to a multiple of 8, 16 for FLUX;
        at least 64); unset values come from the model's default settings, then the GUI's
        defaults. ``seed`` None draws one. ``board`` is an id, name or Board.
        """
        return await self._generator.generate(
            prompt, model=model, negative=negative, width=width, height=height, steps=steps,
            seed=seed, cfg_scale=cfg_scale, scheduler=scheduler, vae=vae, board=board,
            detach=detach,
        )

    async def generate_batch(
        self,
        prompts: str | Sequence[str],
        *,
        seeds: int | Iterable[int] | None = None,
        model: str | ModelConfig | None = None,
        negative: str = "",
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        scheduler: str | None = None,
        vae: str | ModelConfig | None = None,
        board: BoardRef | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """:meth:`generate` for every prompt with every seed, in ONE enqueue request.

        With ``seeds`` None each prompt gets a drawn seed; the batch's items come in prompt
        order, then seed order (``batch.as_completed()`` / ``await batch``).
        """
        return await self._generator.generate_batch(
            prompts, seeds=seeds, model=model, negative=negative, width=width, height=height,
            steps=steps, cfg_scale=cfg_scale, scheduler=scheduler, vae=vae, board=board,
            detach=detach,
        )

    async def copy_image_to_board(self, image: ImageLike, board: BoardRef) -> ImageDTO:
        """Save a copy of ``image`` on ``board`` through the server's queue (a new image with
        its own name; the original stays where it is). Returns the copy."""
        return await self._generator.copy_image_to_board(image, board)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Low-level escape hatch: one REST call with this client's auth, retries, errors."""
        return await self._http.request(method, path, **kwargs)
