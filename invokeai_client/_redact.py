"""Keeping secrets out of logs: one filter on every logger the SDK drives.

The SDK never logs a token or a password itself, but the libraries it drives may: python-
engineio logs the socket's auth packet (``0{"token": "..."}``) at INFO, python-socketio logs
connect packets, aiohttp may log request headers when debugging. :class:`SecretFilter` sits on
each of those loggers (filters are not inherited, so each emitting logger gets it) and rewrites
every record, at every level, before any handler sees it: the secrets this process's clients
use (tokens as they slide, passwords until login) become ``<redacted>``, and so does anything
shaped like a bearer token, a JWT or a ``"token"`` / ``"password"`` field.
"""

from __future__ import annotations

import logging
import re
from collections import deque

__all__ = ["LOGGERS", "REDACTED", "SecretFilter", "install", "protect", "remember_secret"]

REDACTED = "<redacted>"

LOGGERS = (
    "invokeai_client",
    "invokeai_client.pool",
    "engineio",
    "engineio.client",
    "socketio",
    "socketio.client",
    "aiohttp",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.websocket",
    "backoff",
)
"""The loggers the SDK drives (its own, and those of the libraries it calls)."""

_PATTERNS = re.compile(
    r"(?P<bearer>Bearer\s+)[^\s'\"]+"
    r"|(?P<field>\b[\"']?(?:token|password|access_token|refresh_token)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s'\",}]+"
    r"|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}",  # a JWT
    re.IGNORECASE,
)

_SECRETS: deque[str] = deque(maxlen=256)
"""Secrets in use by this process's clients (the newest few hundred: tokens slide)."""


def remember_secret(secret: str | None) -> None:
    """Redact ``secret`` from every log record from now on (short values are ignored: they
    would redact ordinary words)."""
    if secret and len(secret) >= 6 and secret not in _SECRETS:
        _SECRETS.append(secret)


def redact(text: str) -> str:
    """``text`` with every known secret and every secret-shaped part replaced."""
    for secret in tuple(_SECRETS):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _PATTERNS.sub(_replace, text)


def _replace(match: re.Match[str]) -> str:
    prefix = match.group("bearer") or match.group("field") or ""
    return prefix + REDACTED


class SecretFilter(logging.Filter):
    """Rewrites a record's message (and its exception text) without secrets; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = SecretFilter()


def protect(secret: str | None) -> None:
    """:func:`install` the filter and redact ``secret`` (a password) from now on."""
    install()
    remember_secret(secret)


def install() -> None:
    """Put the filter on every logger in :data:`LOGGERS` (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
