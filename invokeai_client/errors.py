"""The exception tree of invokeai-client.

Every error the SDK raises is an :class:`InvokeAIError`, so one ``except`` clause catches them
all; the subclasses say what went wrong so callers can react to the cause, not the text.

.. code-block:: text

    InvokeAIError
    ├── ConnectionError          (also builtins.ConnectionError) the server could not be reached
    ├── TimeoutError             (also builtins.TimeoutError) a deadline passed
    ├── ValidationError          (also ValueError) bad input, found before any request
    │   ├── ModelChoiceError     a model name matched no model or several (``candidates``)
    │   └── JobBusyError         a pool job's folder is in use by another run (``holder``)
    ├── WorkflowError            the workflow JSON is malformed or unsupported
    │   └── ModelNotFoundError   a model field could not be matched on the server
    ├── BoardError               a board could not be found or used
    │   └── BoardNotFoundError   (also NotFoundError) no board with that id or name
    ├── ModelInstallError        a model install job ended in error or was cancelled
    ├── BulkDownloadError        the server could not build a zip of images
    ├── FileWriteError           (also OSError) a file could not be written (disk full, ...)
    ├── RunningLoopError         (also RuntimeError) the sync Client was used inside an event loop
    ├── RunError                 a queue item ended badly (failed or canceled)
    │   ├── RunFailedError
    │   ├── RunCanceledError
    │   ├── RunLostError         the server no longer knows the item
    │   ├── RunDetachedError     the client closed, the item was left on the server
    │   └── RunTimeoutError      (also TimeoutError) a run's deadline passed
    └── APIError                 the server answered with an error status
        ├── BadRequestError (400), AuthenticationError (401), PermissionDeniedError (403),
        ├── NotFoundError (404), ConflictError (409), UnprocessableEntityError (422),
        ├── RateLimitError (429), InternalServerError (5xx)
        ├── EndpointNotAvailableError   the route does not exist on this server version
        └── UnexpectedResponseError     the answer is not what the route gives (wrong shape,
            └── ResponseTooLargeError   malformed, not an image, too large, bad redirect)
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BoardError",
    "BoardNotFoundError",
    "BulkDownloadError",
    "ConflictError",
    "ConnectionError",
    "EndpointNotAvailableError",
    "FileWriteError",
    "InternalServerError",
    "InvokeAIError",
    "JobBusyError",
    "ModelChoiceError",
    "ModelInstallError",
    "ModelNotFoundError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RunCanceledError",
    "RunDetachedError",
    "RunError",
    "RunFailedError",
    "RunLostError",
    "RunTimeoutError",
    "RunningLoopError",
    "TimeoutError",
    "UnexpectedResponseError",
    "UnprocessableEntityError",
    "ValidationError",
    "WorkflowError",
]


class InvokeAIError(Exception):
    """Base class of every error raised by invokeai-client."""


class ConnectionError(InvokeAIError, builtins.ConnectionError):
    """The server could not be reached, or the connection broke before an answer."""


class TimeoutError(InvokeAIError, builtins.TimeoutError):
    """A deadline passed before the server answered or a run finished."""


class ValidationError(InvokeAIError, ValueError):
    """A value given by the caller breaks a rule; raised before anything is sent.

    ``input`` names what was wrong (an input key, a parameter) and ``rule`` the rule it broke.
    """

    def __init__(self, message: str, *, input: str | None = None, rule: str | None = None):
        super().__init__(message)
        self.input = input
        self.rule = rule


class ModelChoiceError(ValidationError):
    """A model named by key, name or name fragment matched no model or several; nothing was
    sent. ``candidates`` lists the models it could have meant (``ModelConfig`` objects);
    ``input`` names the argument or workflow input that named the model."""

    def __init__(self, message: str, *, candidates: Sequence[Any] = (), input: str = "model"):
        super().__init__(message, input=input, rule="names exactly one installed model")
        self.candidates = list(candidates)


class JobBusyError(ValidationError):
    """A pool job (its manifest, e.g. ``OUT/job.sqlite``) is held by another run, in this
    process or another: two runs of one job would send the same variations twice. Raised
    before anything is sent; ``holder`` says who holds it (``pid 1234 on host``) when known.
    """

    def __init__(self, message: str, *, input: str, holder: str | None = None):
        super().__init__(message, input=input, rule="one run at a time per job")
        self.holder = holder


class WorkflowError(InvokeAIError):
    """A workflow could not be loaded, understood or turned into a graph."""


class ModelNotFoundError(WorkflowError):
    """A model field matched no model on the server; ``candidates`` lists near alternatives."""

    def __init__(self, message: str, *, candidates: Sequence[Any] = ()):
        super().__init__(message)
        self.candidates = list(candidates)


class BoardError(InvokeAIError):
    """A board reference could not be resolved or used."""


class ModelInstallError(InvokeAIError):
    """A model install job failed, was cancelled, or installed something unusable.

    ``job_id`` and ``source`` name the job; ``error_type``/``error``/``traceback`` are what the
    server reported.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: int | None = None,
        source: str | None = None,
        error_type: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ):
        super().__init__(message)
        self.job_id = job_id
        self.source = source
        self.error_type = error_type
        self.error = error
        self.traceback = traceback


class BulkDownloadError(InvokeAIError):
    """The server could not build a bulk download archive (``item_name``); ``error`` is its
    reason (for example an image or board that does not exist)."""

    def __init__(self, message: str, *, item_name: str, error: str | None = None) -> None:
        super().__init__(message)
        self.item_name = item_name
        self.error = error


class FileWriteError(InvokeAIError, builtins.OSError):
    """A file the SDK writes (a download, a saved image, a CLI or pool output) could not be
    written: no space left, no permission, a read-only file system, too many open files, a
    name too long. ``path`` names the file, ``errno``/``strerror`` the cause; nothing
    partial is left under the file's name."""

    def __init__(self, message: str, *, path: str, errno: int | None, strerror: str | None):
        super().__init__(message)
        self.path = path
        self.filename = path
        self.errno = errno
        self.strerror = strerror

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunningLoopError(InvokeAIError, RuntimeError):
    """A blocking call of the sync :class:`~invokeai_client.Client` was made in a thread that
    runs an event loop, which it would freeze; use :class:`~invokeai_client.AsyncClient`
    there (or call the sync Client from a worker thread)."""


class RunError(InvokeAIError):
    """A queue item ended in ``failed`` or ``canceled``; carries what the server said."""

    def __init__(
        self,
        message: str,
        *,
        item_id: int | None = None,
        batch_id: str | None = None,
        session_id: str | None = None,
        node_id: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        traceback: str | None = None,
        status: str | None = None,
    ):
        super().__init__(message)
        self.item_id = item_id
        self.batch_id = batch_id
        self.session_id = session_id
        self.node_id = node_id
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        self.status = status


class RunFailedError(RunError):
    """The queue item failed on the server (a node raised, or an input was missing)."""


class RunCanceledError(RunError):
    """The queue item was canceled before it completed."""


class RunLostError(RunError):
    """The server no longer knows the queue item (deleted, queue cleared, or the server
    restarted without its database); its outcome is unknown."""


class RunDetachedError(RunError):
    """The client closed while the item was still on the server; it was left there
    (the run was detached), so its outcome is not known to this client."""


class RunTimeoutError(RunError, TimeoutError):
    """A run's (or batch's) deadline passed; ``canceled`` says whether the server item was
    canceled or left running."""

    def __init__(self, message: str, *, canceled: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.canceled = canceled


class APIError(InvokeAIError):
    """The server answered a request with an error status.

    ``status`` is the HTTP status, ``detail`` the server's ``detail`` value (a string, or the
    list of FastAPI validation errors), ``method`` and ``path`` name the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: Any = None,
        method: str | None = None,
        path: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path

    def reworded(
        self, message: str, *, kind: type[APIError] | None = None, status: int | None = None
    ) -> APIError:
        """This error told better: a new ``kind`` (default: the same class) with ``message``.

        The server's ``detail`` and the request's ``method``/``path`` are kept (and ``status``
        unless given), so ``raise exc.reworded("image 'x.png' not found") from None`` names
        the resource without losing what the server said.
        """
        return (kind or type(self))(
            message,
            status=self.status if status is None else status,
            detail=self.detail,
            method=self.method,
            path=self.path,
        )


class BadRequestError(APIError):
    """HTTP 400: the request was malformed."""


class AuthenticationError(APIError):
    """HTTP 401, or a login that failed: credentials are missing, wrong or expired."""


class PermissionDeniedError(APIError):
    """HTTP 403: the authenticated user may not do this (e.g. an admin-only route)."""


class NotFoundError(APIError):
    """HTTP 404: the named resource does not exist (or is not visible to this user)."""


class ConflictError(APIError):
    """HTTP 409: the server refuses because of its current state."""


class UnprocessableEntityError(APIError):
    """HTTP 422: the server's validation rejected the request body or parameters."""


class RateLimitError(APIError):
    """HTTP 429: too many requests; ``retry_after`` is the server's hint in seconds."""

    retry_after: float | None = None


class InternalServerError(APIError):
    """HTTP 5xx: the server failed while handling the request."""


class EndpointNotAvailableError(APIError):
    """The route does not exist on this server version (it answered with the web UI page)."""


class UnexpectedResponseError(APIError):
    """The server's answer is not what the route gives: JSON of the wrong shape or types,
    malformed or absurdly nested JSON, a body that is not the image it should be, a redirect
    loop or a redirect to another place. ``method`` and ``path`` name the route."""


class ResponseTooLargeError(UnexpectedResponseError):
    """An answer grew past the client's limit (``max_response_size`` in memory,
    ``max_download_size`` for a file), compressed or once decompressed; ``limit`` is it."""

    def __init__(self, message: str, *, limit: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit


class BoardNotFoundError(BoardError, NotFoundError):
    """No board has this id or name (for this user); caught by ``except NotFoundError`` too."""


class QueueFullError(InvokeAIError):
    """A batch the server's queue cannot hold (``max_queue_size``): it is refused whole,
    never silently cut. ``requested`` items were asked for; ``room`` is how many fit."""

    def __init__(self, message: str, *, requested: int, room: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.room = room


_STATUS_CLASSES: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def api_error_class(status: int) -> type[APIError]:
    """The :class:`APIError` subclass for an HTTP status code."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIError)


def describe_detail(detail: Any) -> str:
    """A one-line human reading of a FastAPI ``detail`` value (string or validation list)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for entry in detail[:5]:
            if isinstance(entry, Mapping):
                loc = ".".join(str(p) for p in entry.get("loc", ()) if p != "body")
                msg = str(entry.get("msg", entry))
                if len(msg) > 200:
                    msg = msg[:200] + "..."
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(entry))
        more = f" (+{len(detail) - 5} more)" if len(detail) > 5 else ""
        return "; ".join(parts) + more
    if detail is None:
        return "no detail given"
    return str(detail)
