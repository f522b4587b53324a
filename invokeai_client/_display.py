"""Images shown inline by IPython/Jupyter (``_repr_png_``): a blocking fetch for display hooks.

IPython calls ``_repr_png_`` synchronously, in the kernel's thread, while the kernel's
event loop (which also runs the AsyncClient) is busy calling it: the client's own session
cannot be awaited there. So the image is read with one plain blocking HTTP GET made with the
client's settings (base URL, bearer token, default headers, TLS, proxies only when
``trust_env``), bounded in time and size. A failure gives ``None`` and IPython shows the
object's ``repr`` instead: a display hook never raises.
"""

from __future__ import annotations

import logging
import ssl
import urllib.request
from typing import TYPE_CHECKING

from ._constants import USER_AGENT

if TYPE_CHECKING:
    from ._http import HttpTransport

log = logging.getLogger("invokeai_client")

DISPLAY_TIMEOUT = 30.0
"""Seconds a display hook waits for an image."""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fetch_png(http: HttpTransport, url: str) -> bytes | None:
    """The PNG at ``url`` read with ``http``'s settings, or None when it cannot be had."""
    headers = {"User-Agent": USER_AGENT, **http.options.headers, **http.auth_headers()}
    handlers: list[urllib.request.BaseHandler] = []
    if not http.options.trust_env:
        handlers.append(urllib.request.ProxyHandler({}))
    tls = http.options.ssl
    if isinstance(tls, ssl.SSLContext):
        handlers.append(urllib.request.HTTPSHandler(context=tls))
    elif tls is False:
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=DISPLAY_TIMEOUT) as answer:
            body: bytes = answer.read(http.max_response_size + 1)
    except (OSError, ValueError) as exc:
        log.info("cannot show image %s inline: %s", url, exc)
        return None
    if len(body) > http.max_response_size or not body.startswith(PNG_MAGIC):
        log.info("cannot show image %s inline: not a PNG within the size limit", url)
        return None
    return body
