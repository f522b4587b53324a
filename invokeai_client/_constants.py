"""Named defaults of the SDK, in one place."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("invokeai-client")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

USER_AGENT = f"invokeai-client/{__version__}"

DEFAULT_BASE_URL = "http://127.0.0.1:9090"
"""The server used when neither an argument nor ``$INVOKEAI_URL`` names one."""

DEFAULT_TIMEOUT = 60.0
"""Seconds one HTTP request may take, connection included."""

DEFAULT_MAX_RETRIES = 2
"""How many times an idempotent request is tried again after a transient failure."""

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
"""A server's Retry-After is honoured up to this many seconds."""

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

DEFAULT_CONNECTION_LIMIT = 100
"""Connections the aiohttp pool keeps open to the server at most."""

SOCKET_CONNECT_TIMEOUT = 20.0
RECONNECT_DELAY = 0.5
RECONNECT_DELAY_MAX = 2.0
"""Cap of the socket's reconnect back-off: one cheap connect attempt every ~2 s while the
server is down, so events flow again within seconds of it coming back."""

DEFAULT_QUEUE_ID = "default"
DEFAULT_ORIGIN = "invokeai-client"

DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024
"""Bytes (after decompression) of one answer the SDK reads into memory: JSON, text, the bytes
of an image. A larger (or endlessly inflating) answer raises ResponseTooLargeError."""

DEFAULT_MAX_DOWNLOAD_SIZE = 8 * 1024 * 1024 * 1024
"""Bytes (after decompression) one download streamed to a file may have (bulk zips are big)."""

MAX_REDIRECTS = 5
"""Redirects one request follows (same origin only) before giving up."""
