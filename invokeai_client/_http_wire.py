"""What the HTTP transport knows about the wire: query encoding, ``Retry-After``, which
pooled connections must not be reused, and how long a download may take.

Pure helpers and aiohttp hooks for :mod:`invokeai_client._http` (one home each).
"""

from __future__ import annotations

import email.utils
import time
import weakref
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import aiohttp
from yarl import URL

from . import errors
from ._config import Timeout
from ._constants import MAX_RETRY_AFTER

ParamValue = str | int | float | bool | None | Sequence[str | int | float | bool]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def encode_params(params: Mapping[str, ParamValue] | None) -> list[tuple[str, str]]:
    """Query parameters as pairs: ``None`` dropped, booleans lower-case, lists repeated."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            else:
                pairs.append((key, str(item)))
    return pairs


REUSED: ContextVar[bool] = ContextVar("invokeai_client_reused", default=False)
"""Whether the request being sent in this task got a pooled connection (set by
:class:`PoolConnector`; read by :func:`is_stale` on an error)."""


class PoolConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector that notes in :data:`REUSED` whether the connection it hands
    out has served a request before. aiohttp's trace signals could tell the same, but a
    session with any trace config awaits six signals per request (a tenth of the CPU of a
    small enqueue); this costs one set lookup."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._handed: weakref.WeakSet[Any] = weakref.WeakSet()

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        if protocol is not None:
            if protocol in self._handed:
                REUSED.set(True)
            else:
                self._handed.add(protocol)
        return connection


def unpool(response: aiohttp.ClientResponse) -> None:
    """Never reuse the connection of a 5xx or ``Connection: close`` answer: uvicorn closes it
    after an unhandled exception, and the next request would be written into a dead socket."""
    if response.status >= 500 or response.headers.get("Connection", "").lower() == "close":
        protocol = getattr(response, "_protocol", None)  # a falsy object (it has a len)
        if protocol is None and response.connection is not None:
            protocol = response.connection.protocol
        if protocol is not None:
            protocol.close()


def is_stale(exc: BaseException, *, answered: bool) -> bool:
    """A request whose body could not be written into a reused pooled connection (the
    server had closed that idle connection), before any byte of an answer: the server never
    read it, so it is safe to send once more. A request written whole and then met by a
    closed connection is not (the server may have acted on it: unknown fate)."""
    return (
        not answered
        and REUSED.get()
        and isinstance(exc, aiohttp.ClientOSError)
        and not isinstance(exc, aiohttp.ClientConnectorError)
        and "Can not write request body" in str(exc)
    )


def stream_timeout(limits: Timeout, total: float | None = None) -> aiohttp.ClientTimeout:
    """A download's limits: ``connect`` and ``read`` (each chunk; a plain number bounds both),
    and no total unless ``total`` is given, so a large body that keeps arriving is never cut."""
    return aiohttp.ClientTimeout(
        total=total, sock_connect=limits.connect or limits.total,
        sock_read=limits.read or limits.total,
    )


def download_state(received: int) -> str:
    """How far a failed download got, as the start of its error message."""
    return f"the download stopped after {received:,} bytes: " if received else ""


def check_base_url(base_url: object) -> URL:
    """``base_url`` as a URL if it is an absolute http(s) URL, else ValidationError."""
    example = "such as 'http://127.0.0.1:9090'"
    if not isinstance(base_url, str):
        raise _bad_base_url(f"base_url must be a string {example}, got {base_url!r}")
    try:
        url = URL(base_url.rstrip("/"))
        url.port  # noqa: B018 (yarl checks the port only when it is read)
    except ValueError as exc:
        raise _bad_base_url(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if not url.scheme or not url.host or any(c.isspace() for c in url.host):
        raise _bad_base_url(f"base_url {base_url!r} must be an absolute http(s) URL {example}")
    if url.scheme not in ("http", "https"):
        raise _bad_base_url(
            f"base_url {base_url!r} must use http or https, not {url.scheme!r}",
            rule="http or https scheme",
        )
    return url


def _bad_base_url(message: str, rule: str = "absolute http(s) URL") -> errors.ValidationError:
    return errors.ValidationError(message, input="base_url", rule=rule)
