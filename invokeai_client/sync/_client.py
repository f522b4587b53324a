"""Client: the blocking face of :class:`~invokeai_client.AsyncClient` for scripts."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from typing_extensions import ParamSpec, Unpack

from .._config import Timeout
from .._constants import (
    DEFAULT_MAX_DOWNLOAD_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE_ID,
    DEFAULT_TIMEOUT,
)
from ..client import AsyncClient
from ._bridge import Bridge, ExcInfo
from ._objects import (
    SyncBatchRun,
    SyncBoards,
    SyncImages,
    SyncModels,
    SyncQueue,
    SyncRuns,
    SyncWorkflowRun,
    SyncWorkflows,
)
from ._proxy import Attr, Proxy, blocking

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Client"]


class Client(Proxy[AsyncClient]):
    """A synchronous client for one InvokeAI server, for scripts and REPLs without a loop.

    .. code-block:: python

        with Client("http://127.0.0.1:9090") as client:
            wf = client.workflows.load("flow.json")
            wf.set("Prompt", "a cat")
            result = wf.submit().result()

    It takes the same arguments as :class:`~invokeai_client.AsyncClient` and has the same
    members, blocking: entering starts ONE background thread running one event loop, which
    owns the AsyncClient (so its one HTTP session and one Socket.IO stream serve the whole
    block); leaving closes the client and stops the thread. Async iterators become plain
    iterators, async context managers plain ones, ``await run`` becomes ``run.result()``.
    Ctrl-C while waiting cancels the server item, as cancelling the awaiting task does.

    A Client may be shared by threads. It refuses to run inside a running event loop (use
    :class:`~invokeai_client.AsyncClient` there). ``client.aio`` is the AsyncClient, and
    :meth:`call` runs your own coroutine functions in the client's loop.
    """

    __slots__ = ("boards", "images", "models", "queue", "runs", "workflows")

    boards: SyncBoards
    images: SyncImages
    models: SyncModels
    queue: SyncQueue
    runs: SyncRuns
    workflows: SyncWorkflows

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
    ) -> None:
        client = AsyncClient(
            base_url,
            token=token,
            email=email,
            password=password,
            timeout=timeout,
            max_retries=max_retries,
            queue_id=queue_id,
            verify_ssl=verify_ssl,
            events=events,
            max_concurrency=max_concurrency,
            max_response_size=max_response_size,
            max_download_size=max_download_size,
            headers=headers,
            trust_env=trust_env,
            ssl_context=ssl_context,
        )
        bridge = Bridge()
        bridge.owner = self
        super().__init__(client, bridge)
        object.__setattr__(self, "boards", SyncBoards(client.boards, bridge))
        object.__setattr__(self, "images", SyncImages(client.images, bridge))
        object.__setattr__(self, "models", SyncModels(client.models, bridge))
        object.__setattr__(self, "queue", SyncQueue(client.queue, bridge))
        object.__setattr__(self, "runs", SyncRuns(client.runs, bridge))
        object.__setattr__(self, "workflows", SyncWorkflows(client.workflows, bridge))

    def __repr__(self) -> str:
        state = "open" if self._bridge.running else "closed"
        return f"Client({self.base_url!r}, queue_id={self.queue_id!r}, {state})"

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Client:
        """Start the loop thread and open the AsyncClient in it (HTTP session, login, event
        stream); returns self. A no-op when open."""
        bridge = self._bridge
        if bridge.running:
            return self
        bridge.start()
        try:
            bridge.enter(self._target)
        except BaseException:
            bridge.stop(sys.exc_info())  # with the error: tasks still entering are cancelled
            raise
        return self

    def close(self) -> None:
        """Close the AsyncClient (runs in flight are settled as on leaving ``async with``),
        then stop the loop thread. Safe to call twice."""
        self._bridge.stop()

    def __enter__(self) -> Client:
        return self.open()

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        self._bridge.stop(exc_info)

    @property
    def is_open(self) -> bool:
        """Whether the client is open (its loop thread runs)."""
        return self._bridge.running

    # -- members of AsyncClient -----------------------------------------------------------------

    base_url: Attr[str] = Attr()
    is_connected: Attr[bool] = Attr()
    queue_id: Attr[str] = Attr()
    server_info = blocking(AsyncClient.server_info)
    features = blocking(AsyncClient.features)
    login = blocking(AsyncClient.login)
    generate = blocking(AsyncClient.generate, returns=SyncWorkflowRun)
    generate_batch = blocking(AsyncClient.generate_batch, returns=SyncBatchRun)
    copy_image_to_board = blocking(AsyncClient.copy_image_to_board)

    def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``await fn(*args, **kwargs)`` in the client's event loop and return the result.

        The escape hatch for async code of your own, e.g. ``client.call(my_step,
        client.aio)`` where ``my_step`` takes an :class:`~invokeai_client.AsyncClient`.
        Nothing is converted: async SDK objects come back as they are.
        """
        return self._bridge.call(fn, *args, **kwargs)
