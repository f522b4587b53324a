"""HTTP transport: one aiohttp session, auth, safe retries and error mapping.

Every REST call of the SDK goes through :meth:`HttpTransport.request`. It joins the path onto
the base URL, adds the bearer token, swaps in ``X-Refreshed-Token`` when the server slides the
token, retries only what is safe to repeat, checks the content type (InvokeAI answers unknown
GET routes with its web page) and turns error statuses into the :mod:`invokeai_client.errors`
tree.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiohttp
import backoff
from yarl import URL

from . import _redact, errors
from ._answers import LAST_ROUTE
from ._checks import check_int
from ._config import SessionOptions
from ._constants import (
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_MAX_DOWNLOAD_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    INITIAL_RETRY_DELAY,
    MAX_REDIRECTS,
    MAX_RETRY_DELAY,
    RETRY_STATUSES,
    USER_AGENT,
)
from ._http_wire import (
    REUSED,
    ParamValue,
    PoolConnector,
    check_base_url,
    download_state,
    encode_params,
    is_stale,
    parse_retry_after,
    stream_timeout,
    unpool,
)

log = logging.getLogger("invokeai_client")

Expect = Literal["json", "bytes", "text", "none"]
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_URL_CACHE_SIZE = 256
READ_CHUNK = 256 * 1024
_HTML_TITLE = re.compile(r"<title>([^<]{1,200})</title>", re.IGNORECASE)
_NON_HTTP_REDIRECT: type[Exception] = getattr(aiohttp, "NonHttpUrlClientError", aiohttp.InvalidURL)


class _Retryable(Exception):
    """Internal signal: this attempt failed in a way that may be tried again.

    ``stale``: it failed on a reused pooled connection before any byte of an answer (the
    server had closed that idle connection), so it is safe to send once more, any method.
    """

    def __init__(
        self, error: errors.InvokeAIError, retry_after: float | None = None, *, stale: bool = False
    ):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.stale = stale


class _RetryWait:
    """Exponential backoff, jittered between half and all of each step, never shorter than a
    ``Retry-After``."""

    def __init__(self) -> None:
        self.retry_after: float | None = None
        self.attempt = 0  # shared by every generator made from this object

    def __call__(self) -> Generator[float, None, None]:
        while True:
            delay = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * (2**self.attempt))
            delay = random.uniform(delay / 2, delay)
            if self.retry_after is not None:
                delay = max(delay, self.retry_after)
                self.retry_after = None
            self.attempt += 1
            yield delay


class HttpTransport:
    """The SDK's single aiohttp session plus the rules for talking to InvokeAI.

    ``base_url`` may carry a sub-path (a server behind a reverse proxy at ``/invoke``); API
    paths and the socket path are joined onto it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        max_retries: int = 2,
        options: SessionOptions | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_download_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
    ) -> None:
        url = check_base_url(base_url)
        check_int("max_retries", max_retries, minimum=0)
        check_int("max_response_size", max_response_size, minimum=1024)
        check_int("max_download_size", max_download_size, minimum=1024)
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise errors.ValidationError(
                "token must be a non-empty string (or None to send no token)",
                input="token",
                rule="non-empty text",
            )
        _redact.remember_secret(token)
        self.base_url = url
        self.options = options = options or SessionOptions()
        self.timeout = options.timeout
        self.max_retries = max_retries
        self.verify_ssl = options.verify
        self.max_response_size = max_response_size
        self.max_download_size = max_download_size
        # With the application's own session, our timeout and headers go with each request.
        self._own_session = options.session is None
        self._request_headers = {} if self._own_session else dict(options.headers)
        self._request_timeout = None if self._own_session else options.timeout.to_aiohttp()
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self.server_version: str | None = None
        self.on_token_refreshed: Callable[[str], None] | None = None
        self.request_count = 0
        self._urls: dict[str, URL] = {}

    def __repr__(self) -> str:
        auth = "token=<set>" if self._token else "token=None"
        return f"HttpTransport({str(self.base_url)!r}, {auth})"

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Create the aiohttp session (idempotent)."""
        if self._session is not None:
            return
        options = self.options
        if options.session is not None:
            if options.session.closed:
                raise errors.InvokeAIError("the aiohttp session given as http_session is closed")
            self._session = options.session
            return
        connector = PoolConnector(limit=DEFAULT_CONNECTION_LIMIT, ssl=options.ssl)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=options.timeout.to_aiohttp(),
            headers={"User-Agent": USER_AGENT, **options.headers},
            trust_env=options.trust_env,
        )

    async def aclose(self) -> None:
        """Close the session and its connections (an application's own session stays open)."""
        session, self._session = self._session, None
        if session is not None and self._own_session:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open aiohttp session; the event stream shares it."""
        if self._session is None:
            raise errors.InvokeAIError(
                "the client is not open: use 'async with AsyncClient(...)' or 'await client.open()'"
            )
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None

    # -- auth ----------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The bearer token in use (never printed by the SDK)."""
        return self._token

    def set_token(self, token: str | None) -> None:
        _redact.remember_secret(token)
        self._token = token
        if token and self.on_token_refreshed is not None:
            self.on_token_refreshed(token)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # -- URLs ----------------------------------------------------------------------------

    def url(self, path: str) -> URL:
        """Absolute URL of an API path such as ``/api/v1/app/version``."""
        known = self._urls.get(path)
        if known is not None:
            return known
        if path.startswith(("http://", "https://")):
            url = URL(path)
        else:
            url = URL(str(self.base_url) + "/" + path.lstrip("/"), encoded=False)
        if len(self._urls) >= _URL_CACHE_SIZE:
            self._urls.clear()  # paths with ids in them: keep the cache small, not clever
        self._urls[path] = url
        return url

    @property
    def origin(self) -> str:
        return str(self.base_url.origin())

    @property
    def socketio_path(self) -> str:
        prefix = self.base_url.path.rstrip("/")
        return f"{prefix}/ws/socket.io"

    # -- requests ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
        data: Any = None,
        expect: Expect = "json",
        retry: bool | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return the decoded answer.

        ``retry`` defaults to the method's idempotency: GET/HEAD/PUT/DELETE are retried on
        connection errors, 408, 429 and 5xx; POST/PATCH only when the caller says it is safe.
        ``data`` may be a zero-argument callable that builds a fresh body per attempt
        (multipart bodies cannot be sent twice).
        """
        method = method.upper()

        async def attempt_once() -> Any:
            return await self._send_once(
                method,
                path,
                params=params,
                json=json,
                data=data() if callable(data) else data,
                expect=expect,
                timeout=timeout,
                headers=headers,
            )

        # Most requests succeed at once: the retry machinery is built only after a failure.
        try:
            return await attempt_once()
        except _Retryable as exc:
            first_failure = exc
        if first_failure.stale:  # the server never saw it: once more, whatever the method
            log.debug("sending %s %s again: %s", method, path, first_failure)
            try:
                return await attempt_once()
            except _Retryable as exc:
                first_failure = exc
        may_retry = (method in IDEMPOTENT_METHODS) if retry is None else retry
        if not may_retry or self.max_retries == 0:
            raise first_failure.error from first_failure.__cause__
        return await self._retry(method, path, attempt_once, first_failure, self.max_retries)

    async def _retry(
        self,
        method: str,
        path: str,
        attempt_once: Callable[[], Awaitable[Any]],
        first_failure: _Retryable,
        tries: int,
    ) -> Any:
        """Try again up to ``tries`` times with backoff, after ``first_failure``."""
        wait = _RetryWait()
        wait.retry_after = first_failure.retry_after
        delay = next(wait())
        log.info("retrying %s %s in %.2fs after %s", method, path, delay, first_failure)
        await asyncio.sleep(delay)

        def remember_retry_after(exc: BaseException) -> bool:
            if isinstance(exc, _Retryable):
                wait.retry_after = exc.retry_after
            return False

        def log_retry(details: Any) -> None:
            log.info(
                "retrying %s %s in %.2fs after %s",
                method, path, details.get("wait", 0.0), details.get("exception"),
            )

        try:
            async for attempt in backoff.aretry_context(
                _Retryable,
                wait,
                max_tries=tries,
                jitter=None,
                giveup=remember_retry_after,
                on_backoff=log_retry,
                logger=None,
            ):
                with attempt:
                    return await attempt_once()
        except _Retryable as exc:
            raise exc.error from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_options(
        self,
        params: Mapping[str, ParamValue] | None,
        timeout: float | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """Only what this request sets: aiohttp then uses the session's defaults
        (``timeout=None`` would mean *no* timeout, not the client's)."""
        options: dict[str, Any] = {}
        if params:
            options["params"] = encode_params(params)
        if timeout is not None:
            options["timeout"] = aiohttp.ClientTimeout(total=timeout)
        elif self._request_timeout is not None:
            options["timeout"] = self._request_timeout
        if self._token or headers or self._request_headers:
            req_headers = self.auth_headers()
            req_headers.update(self._request_headers)
            if headers:
                req_headers.update(headers)
            options["headers"] = req_headers
        return options

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None,
        json: Any,
        data: Any,
        expect: Expect,
        timeout: float | None,
        headers: Mapping[str, str] | None,
    ) -> Any:
        options = self._request_options(params, timeout, headers)
        REUSED.set(False)  # the connector says when the connection came from the pool
        started = time.perf_counter()
        self.request_count += 1
        LAST_ROUTE.set(f"{method} {path.split('?', 1)[0]}")
        answered = False
        try:
            async with self.session.request(
                method, self.url(path), json=json, data=data, max_redirects=MAX_REDIRECTS,
                raise_for_status=False, **options,
            ) as response:
                answered = True
                body = await self._read(method, path, response)
                unpool(response)
                self._note_refreshed_token(response)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "%s %s -> %d (%.1f ms)",
                        method, path, response.status, (time.perf_counter() - started) * 1000,
                    )
                if response.status >= 400:
                    raise self._error_for(method, path, response, body)
                return self._decode(method, path, response, body, expect)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            error = errors.ConnectionError(
                f"{method} {path}: cannot reach InvokeAI at {self.base_url}: {exc}"
            )
            stale = is_stale(exc, answered=answered)
            raise _Retryable(error, stale=stale) from exc
        except asyncio.TimeoutError as exc:
            timeout_error = errors.TimeoutError(
                f"{method} {path}: no answer from InvokeAI at {self.base_url} within the timeout"
            )
            raise _Retryable(timeout_error) from exc
        except aiohttp.ClientError as exc:
            raise self._client_error(method, path, exc) from exc

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, *, params: Mapping[str, ParamValue] | None = None,
        timeout: float | None = None, limit: int | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The body of a large answer (downloads) as chunks, at most ``max_download_size``
        bytes once decompressed; errors are mapped. Bounded by ``_http_wire.stream_timeout``; never
        sent again (a download that failed after bytes arrived says how many)."""
        received = [0]
        try:
            async with self.session.request(
                method,
                self.url(path),
                params=encode_params(params),
                headers={**self._request_headers, **self.auth_headers()},
                max_redirects=MAX_REDIRECTS,
                raise_for_status=False,
                timeout=stream_timeout(self.timeout, timeout),
            ) as response:
                self._note_refreshed_token(response)
                if response.status >= 400:
                    body = await self._read(method, path, response)
                    unpool(response)
                    error = self._error_for(method, path, response, body)
                    raise error.error if isinstance(error, _Retryable) else error
                content_type = response.headers.get("Content-Type", "")
                if content_type.startswith("text/html"):
                    raise self._html_error(method, path)
                yield self._chunks(
                    method, path, response, limit or self.max_download_size, received
                )
        except asyncio.TimeoutError as exc:
            if isinstance(exc, errors.InvokeAIError):
                raise
            limits = stream_timeout(self.timeout, timeout)
            raise errors.TimeoutError(
                f"{method} {path}: {download_state(received[0])}no data from InvokeAI at "
                f"{self.base_url} for {limits.sock_read} s (the read limit)"
                + (f" or not done within the total of {timeout} s" if timeout else "")
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise errors.ConnectionError(
                f"{method} {path}: {download_state(received[0])}cannot reach InvokeAI at "
                f"{self.base_url}: {exc}"
            ) from exc
        except aiohttp.ClientError as exc:
            raise self._client_error(method, path, exc) from exc

    async def _chunks(
        self, method: str, path: str, response: aiohttp.ClientResponse, limit: int,
        received: list[int] | None = None,
    ) -> AsyncIterator[bytes]:
        """The body's chunks; stops with ResponseTooLargeError past ``limit`` bytes on the wire
        (Content-Length) or once decompressed."""
        length = response.content_length
        if length is not None and length > limit:
            raise self._too_large(method, path, limit)
        total = 0
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            total += len(chunk)
            if total > limit:
                raise self._too_large(method, path, limit)
            if received is not None:
                received[0] = total
            yield chunk

    async def _read(self, method: str, path: str, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, at most ``max_response_size`` bytes (see :meth:`_chunks`)."""
        length = response.content_length
        headers = response.headers
        if (
            length is not None and length <= self.max_response_size
            and "Content-Encoding" not in headers and "Transfer-Encoding" not in headers
        ):  # the body is exactly ``length`` bytes as sent: one read (most answers)
            return await response.read()
        parts = [chunk async for chunk in self._chunks(method, path, response,
                                                       self.max_response_size)]
        return b"".join(parts)

    def _too_large(self, method: str, path: str, limit: int) -> errors.ResponseTooLargeError:
        route = path.split("?", 1)[0]
        return errors.ResponseTooLargeError(
            f"{method} {route}: InvokeAI's answer is larger than the client's limit of "
            f"{limit:,} bytes (raise max_response_size / max_download_size if it is genuine)",
            limit=limit,
            method=method,
            path=route,
        )

    def _client_error(self, method: str, path: str, exc: aiohttp.ClientError) -> errors.APIError:
        """aiohttp's other errors (redirect loops, redirects to non-HTTP URLs, broken
        headers) as an UnexpectedResponseError naming the route."""
        route = path.split("?", 1)[0]
        if isinstance(exc, aiohttp.TooManyRedirects):
            why = f"more than {MAX_REDIRECTS} redirects (a redirect loop?)"
        elif isinstance(exc, (aiohttp.InvalidURL, _NON_HTTP_REDIRECT)):
            why = f"a redirect to a URL the client will not follow ({exc})"
        else:
            why = f"an answer the client cannot read ({type(exc).__name__}: {exc})"
        return errors.UnexpectedResponseError(
            f"{method} {route}: InvokeAI at {self.base_url} sent {why}",
            method=method,
            path=route,
        )

    # -- helpers -------------------------------------------------------------------------

    def _note_refreshed_token(self, response: aiohttp.ClientResponse) -> None:
        refreshed = response.headers.get("X-Refreshed-Token")
        if refreshed and refreshed != self._token:
            log.debug("server refreshed the bearer token")
            self.set_token(refreshed)

    def _html_error(self, method: str, path: str) -> errors.EndpointNotAvailableError:
        version = self.server_version or "unknown version"
        route = path.split("?", 1)[0]
        return errors.EndpointNotAvailableError(
            f"{method} {route} is not available on this InvokeAI server ({version}): it "
            "answered with the web UI's HTML page, which is what InvokeAI does for routes "
            "it does not have",
            status=200,
            method=method,
            path=route,
        )

    def _decode(
        self,
        method: str,
        path: str,
        response: aiohttp.ClientResponse,
        body: bytes,
        expect: Expect,
    ) -> Any:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            raise self._html_error(method, path)
        if expect == "none":
            return None
        if expect == "bytes":
            return body
        if expect == "text":
            return body.decode(response.charset or "utf-8", errors="replace")
        if not body:
            return None
        if "json" not in content_type:
            raise errors.UnexpectedResponseError(
                f"{method} {path}: expected JSON from InvokeAI but got "
                f"{content_type or 'no content type'}",
                status=response.status,
                method=method,
                path=path,
            )
        try:
            return jsonlib.loads(body)
        except (ValueError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise errors.UnexpectedResponseError(
                f"{method} {path}: InvokeAI sent malformed JSON ({why})",
                status=response.status,
                method=method,
                path=path,
            ) from exc

    def _error_for(
        self, method: str, path: str, response: aiohttp.ClientResponse, body: bytes
    ) -> Exception:
        status = response.status
        detail: Any = None
        try:
            parsed = jsonlib.loads(body) if body else None
            detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
        except (ValueError, RecursionError):
            text = body.decode("utf-8", errors="replace").strip()
            title = _HTML_TITLE.search(text[:2000])
            if title is not None:  # a gateway's error page (nginx, a load balancer)
                detail = f"an HTML error page: {' '.join(title.group(1).split())}"
            else:
                detail = text[:500] if text else None
        route = path.split("?", 1)[0]
        message = f"{method} {route} failed with HTTP {status}: {errors.describe_detail(detail)}"
        cls = errors.api_error_class(status)
        error = cls(message, status=status, detail=detail, method=method, path=route)
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if isinstance(error, errors.RateLimitError):
                error.retry_after = retry_after
            return _Retryable(error, retry_after)
        return error
