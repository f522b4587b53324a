"""A real reverse proxy (nginx) in front of a test server, as teams deploy InvokeAI.

:class:`NginxProxy` starts the system's nginx on a free loopback port with a throwaway
configuration and prefix, proxying HTTP and the Socket.IO WebSocket to ``upstream``.
``enqueue_timeout`` is the gateway's read timeout for ``POST .../enqueue_batch`` only, so a
test can make the gateway give up (504) while InvokeAI is still writing the batch; every other
route gets ``read_timeout``.

.. code-block:: python

    with NginxProxy(server.url, enqueue_timeout=0.05) as proxy:
        async with AsyncClient(proxy.url) as client: ...

nginx comes from Debian's package (``apt-get install nginx``; ``scripts/test.sh`` installs
it when missing); :func:`nginx_binary` finds it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from yarl import URL

from .local import free_port

__all__ = ["NginxProxy", "ProxyError", "nginx_binary"]

_CONFIG = """
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 200m;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_next_upstream off;
        proxy_connect_timeout 5s;
        location ~ /enqueue_batch$ {{
            proxy_pass {upstream};
            proxy_read_timeout {enqueue_timeout}ms;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_read_timeout {read_timeout}ms;
        }}
    }}
}}
"""


class ProxyError(RuntimeError):
    """nginx is missing or did not start."""


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


class NginxProxy:
    """nginx on ``127.0.0.1:<free port>`` proxying to ``upstream`` (use as a context
    manager); ``url`` is the proxy's base URL."""

    def __init__(
        self, upstream: str, *, enqueue_timeout: float = 60.0, read_timeout: float = 60.0
    ) -> None:
        self.upstream = str(URL(upstream).origin())
        self.enqueue_timeout = enqueue_timeout
        self.read_timeout = read_timeout
        self.port = 0
        self._prefix: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxProxy:
        """Write the configuration, start nginx and wait until it accepts connections."""
        binary = nginx_binary()
        if binary is None:
            raise ProxyError("nginx is not installed (apt-get install -y nginx)")
        self._prefix = Path(tempfile.mkdtemp(prefix="invokeai-nginx-"))
        self.port = free_port()
        config = self._prefix / "nginx.conf"
        config.write_text(_CONFIG.format(
            user="user root;" if os.geteuid() == 0 else "",
            prefix=self._prefix, port=self.port, upstream=self.upstream,
            enqueue_timeout=max(1, int(self.enqueue_timeout * 1000)),
            read_timeout=max(1, int(self.read_timeout * 1000)),
        ))
        self._process = subprocess.Popen(
            [binary, "-p", str(self._prefix), "-c", str(config), "-e", str(self._prefix / "e.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                self.stop()
                raise ProxyError(f"nginx exited at start: {error}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ProxyError("nginx did not accept connections within 15 s")

    def stop(self) -> None:
        """Stop nginx (SIGTERM, then SIGKILL) and remove its prefix."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._prefix is not None:
            shutil.rmtree(self._prefix, ignore_errors=True)
            self._prefix = None

    def __enter__(self) -> NginxProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
