"""Client configuration: what :class:`~invokeai_client.AsyncClient` takes beyond the URL.

Two pure parts and no I/O:

- :func:`resolve_connection` fills the URL and the credentials from the environment
  (``INVOKEAI_URL``, ``INVOKEAI_TOKEN``, ``INVOKEAI_EMAIL`` / ``INVOKEAI_PASSWORD``) when the
  caller gave none, as openai-python does with ``OPENAI_API_KEY``; an argument always wins.
- :class:`Timeout` is the structured timeout (connect / read / total) and
  :class:`SessionOptions` everything the HTTP session is built from (headers, proxies from
  the environment, TLS, or an aiohttp session the application owns).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import aiohttp

from . import errors
from ._constants import DEFAULT_BASE_URL, DEFAULT_TIMEOUT

ENV_URL = "INVOKEAI_URL"
ENV_TOKEN = "INVOKEAI_TOKEN"
ENV_EMAIL = "INVOKEAI_EMAIL"
ENV_PASSWORD = "INVOKEAI_PASSWORD"


@dataclass(frozen=True)
class Timeout:
    """How long HTTP requests may take, in seconds (``None``: no limit).

    ``connect`` bounds opening a connection, ``read`` the wait for each chunk of an answer,
    ``total`` a whole request. ``AsyncClient(timeout=30)`` is ``Timeout(total=30)``;
    ``Timeout(connect=5, read=120, total=None)`` suits slow answers from a server that is
    quickly reachable. The event stream's own waits are not bounded by it.
    """

    total: float | None = DEFAULT_TIMEOUT
    connect: float | None = None
    read: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read"):
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise errors.ValidationError(
                    f"timeout {name} must be None or a number of seconds > 0, got {value!r}",
                    input=f"timeout.{name}",
                    rule="> 0",
                )

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """A Timeout from what ``AsyncClient(timeout=...)`` accepts: a number (the total),
        a Timeout, or ``None`` (no limit)."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise errors.ValidationError(
                f"timeout must be a number of seconds, a Timeout or None, got {value!r}",
                input="timeout",
                rule="seconds > 0 or Timeout",
            )
        try:
            return cls(total=value)
        except errors.ValidationError:
            raise errors.ValidationError(
                f"timeout must be None or a number of seconds > 0, got {value!r}",
                input="timeout",
                rule="> 0",
            ) from None

    def to_aiohttp(self) -> aiohttp.ClientTimeout:
        """The same limits as aiohttp spells them (``connect`` is the socket connect)."""
        return aiohttp.ClientTimeout(
            total=self.total, sock_connect=self.connect, sock_read=self.read
        )


class Connection(NamedTuple):
    """Where to connect and how to authenticate, after the environment was consulted."""

    base_url: str
    token: str | None
    email: str | None
    password: str | None
    from_env: bool = False  # the credentials are $INVOKEAI_*: used on multi-user servers only

    @property
    def credentials_source(self) -> str:
        """Where the credentials came from, as error messages name it."""
        if self.from_env:
            return f"${ENV_TOKEN}" if self.token else f"${ENV_EMAIL}/${ENV_PASSWORD}"
        return "token=" if self.token else "email=/password="

    def __repr__(self) -> str:  # never show secrets
        auth = "token" if self.token else ("email/password" if self.email else "none")
        return f"Connection({self.base_url!r}, auth={auth})"


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def resolve_connection(
    base_url: str | None,
    token: str | None,
    email: str | None,
    password: str | None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """The URL and credentials to use: the arguments, else ``$INVOKEAI_*``, else defaults.

    Credentials come from the environment only when no credential argument was given, so
    ``AsyncClient(url, token=...)`` never mixes with an ``$INVOKEAI_EMAIL`` of the shell.
    """
    env = os.environ if env is None else env
    url = base_url if base_url is not None else (_env(env, ENV_URL) or DEFAULT_BASE_URL)
    if token is not None or email is not None or password is not None:
        return Connection(url, token, email, password)
    token, email, password = _env(env, ENV_TOKEN), _env(env, ENV_EMAIL), _env(env, ENV_PASSWORD)
    if token is not None and (email is not None or password is not None):
        raise errors.ValidationError(
            f"${ENV_TOKEN} and ${ENV_EMAIL}/${ENV_PASSWORD} are both set: set one way to "
            "log in, or pass token= or email=/password= to the client",
            input=ENV_TOKEN,
            rule="one way to authenticate",
        )
    if (email is None) != (password is None):
        missing = ENV_PASSWORD if password is None else ENV_EMAIL
        raise errors.ValidationError(
            f"${ENV_EMAIL} and ${ENV_PASSWORD} must be set together to log in; "
            f"${missing} is not set",
            input=missing,
            rule="email and password together",
        )
    return Connection(url, token, email, password, from_env=token is not None or email is not None)


@dataclass(frozen=True)
class SessionOptions:
    """How the client's aiohttp session is made, or the application's own session.

    ``headers`` go with every request and the event stream (an auth proxy's key, a tracing
    id). ``trust_env`` lets aiohttp read ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``~/.netrc``.
    ``ssl`` is an :class:`ssl.SSLContext` (private CA, client certificates) or a bool
    (``False``: no certificate check). ``session`` is an existing
    :class:`aiohttp.ClientSession` the client uses instead of making one, and never closes;
    its own timeout, proxy and TLS settings then apply, plus ``timeout`` and ``headers``.
    """

    timeout: Timeout = field(default_factory=Timeout)
    headers: Mapping[str, str] = field(default_factory=dict)
    trust_env: bool = False
    ssl: ssl.SSLContext | bool = True
    session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise errors.ValidationError(
                f"headers must map header names to text values, got {self.headers!r}",
                input="headers",
                rule="mapping of str to str",
            )
        if not isinstance(self.trust_env, bool):
            raise errors.ValidationError(
                f"trust_env must be True or False, got {self.trust_env!r}",
                input="trust_env",
                rule="boolean",
            )
        if not isinstance(self.ssl, (ssl.SSLContext, bool)):
            raise errors.ValidationError(
                f"ssl must be an ssl.SSLContext, True or False, got {self.ssl!r}",
                input="ssl",
                rule="SSLContext or bool",
            )
        if self.session is not None and not isinstance(self.session, aiohttp.ClientSession):
            raise errors.ValidationError(
                f"http_session must be an aiohttp.ClientSession, got {self.session!r}",
                input="http_session",
                rule="aiohttp.ClientSession",
            )

    @property
    def verify(self) -> bool:
        """Whether certificates are checked (False only when ``ssl=False``)."""
        return self.ssl is not False


def session_options(
    *,
    timeout: Timeout | float | None,
    headers: Mapping[str, str] | None,
    trust_env: bool,
    verify_ssl: bool,
    ssl_context: ssl.SSLContext | None,
    http_session: aiohttp.ClientSession | None,
) -> SessionOptions:
    """The :class:`SessionOptions` of ``AsyncClient``'s keyword arguments, checked."""
    if not isinstance(verify_ssl, bool):
        raise errors.ValidationError(
            f"verify_ssl must be True or False, got {verify_ssl!r}",
            input="verify_ssl",
            rule="boolean",
        )
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise errors.ValidationError(
            f"ssl_context must be an ssl.SSLContext, got {ssl_context!r}",
            input="ssl_context",
            rule="ssl.SSLContext",
        )
    if ssl_context is not None and not verify_ssl:
        raise errors.ValidationError(
            "give either ssl_context= or verify_ssl=False, not both (the context decides "
            "how certificates are checked)",
            input="ssl_context",
            rule="one TLS setting",
        )
    if isinstance(headers, Mapping):
        headers = dict(headers)
    return SessionOptions(
        timeout=Timeout.of(timeout),
        headers={} if headers is None else headers,
        trust_env=trust_env,
        ssl=ssl_context if ssl_context is not None else verify_ssl,
        session=http_session,
    )
