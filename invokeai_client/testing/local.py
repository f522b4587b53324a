"""Run a real InvokeAI server on this machine: install it once, start it, stop it.

Used by the test suite (the real peer), by the benchmarks and by ``invokeai-client run``
when no server URL is given. The server is installed from a pinned lock file into a venv in
the user's cache (``$INVOKEAI_CLIENT_CACHE`` or ``~/.cache/invokeai-client``), started on a
free loopback port with a throwaway root, and stopped by its own PID only.

Command line::

    python -m invokeai_client.testing.local install      # once; takes a few minutes
    python -m invokeai_client.testing.local serve        # start, print the URL, wait for Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

INVOKEAI_VERSION = "6.14.2"
LOCK_FILE = Path(__file__).with_name(f"invokeai-{INVOKEAI_VERSION}.lock.txt")
PYTHON_CANDIDATES = ("python3.11", "python3.12")

# Runs the stock server with two changes for throwaway test servers:
# - no VACUUM at startup: InvokeAI 6.14.2 runs it while its queue processor already works on
#   pending items of an on-disk database, which sometimes kills the startup ("cannot VACUUM -
#   SQL statements in progress", or a SystemError from sqlite3's commit);
# - with INVOKEAI_CLIENT_FAST_GC=1, gc.freeze() once the app is built: InvokeAI calls
#   gc.collect() before every queue item, which costs ~0.5 s with torch imported; freezing
#   the import-time heap makes those collections cheap.
_LAUNCHER = """
import gc, os, sys
import invokeai.app.run_app as run_app
from invokeai.app.services.shared.sqlite import sqlite_database
sqlite_database.SqliteDatabase.clean = lambda self: None
if os.environ.get("INVOKEAI_CLIENT_FAST_GC") == "1":
    original = run_app.get_app
    def get_app_then_freeze():
        app = original()
        gc.collect()
        gc.freeze()
        return app
    run_app.get_app = get_app_then_freeze
sys.argv[0] = "invokeai-web"
sys.exit(run_app.run_app())
"""


class LocalServerError(RuntimeError):
    """The local InvokeAI could not be installed or started; the message says why."""


def cache_dir() -> Path:
    """Where the InvokeAI venv lives (``$INVOKEAI_CLIENT_CACHE`` overrides)."""
    env = os.environ.get("INVOKEAI_CLIENT_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return (base if env else base / "invokeai-client") / f"invokeai-{INVOKEAI_VERSION}"


def venv_dir() -> Path:
    return cache_dir() / "venv"


def is_installed() -> bool:
    return (cache_dir() / "installed.json").is_file() and (venv_dir() / "bin" / "python").exists()


def _find_python() -> str:
    for name in PYTHON_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise LocalServerError(
        "InvokeAI 6.14.2 needs Python 3.11 or 3.12 to install; none was found on PATH "
        f"(looked for {', '.join(PYTHON_CANDIDATES)})"
    )


def ensure_installed(*, quiet: bool = False) -> Path:
    """Install InvokeAI into the cache venv if it is not there yet; return the venv path.

    Safe to call from several processes at once: a lock file serialises installs.
    """
    import fcntl

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed():
            return venv_dir()
        venv = venv_dir()
        if venv.exists():
            shutil.rmtree(venv)
        python = _find_python()
        out = subprocess.DEVNULL if quiet else None
        if not quiet:
            print(f"installing InvokeAI {INVOKEAI_VERSION} into {venv} (a few minutes, once)",
                  file=sys.stderr)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, stdout=out)
        started = time.monotonic()
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "-q", "-r", str(LOCK_FILE)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode != 0:
            raise LocalServerError(
                f"installing InvokeAI {INVOKEAI_VERSION} failed:\n{result.stderr[-3000:]}"
            )
        (root / "installed.json").write_text(
            json.dumps({"version": INVOKEAI_VERSION, "seconds": time.monotonic() - started})
        )
        return venv


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalInvokeAI:
    """A real InvokeAI server process on 127.0.0.1 (use as a context manager).

    It runs the stock server without its startup VACUUM (see ``_LAUNCHER``). ``fast_gc``
    also freezes the garbage collector's import-time heap (about 100 items/s instead of 2);
    ``memory_db`` keeps its database in memory; ``multiuser`` turns on accounts; ``env``
    adds any ``INVOKEAI_*`` setting.
    """

    port: int | None = None
    root: Path | None = None
    fast_gc: bool = True
    memory_db: bool = True
    multiuser: bool = False
    startup_timeout: float = 180.0
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _own_root: bool = field(default=False, init=False, repr=False)
    started_in: float | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "invokeai.log"

    def start(self) -> LocalInvokeAI:
        """Install if needed, start the server and wait until it answers."""
        venv = ensure_installed()
        if self.port is None:
            self.port = free_port()
        elif _port_in_use(self.port):
            # InvokeAI would silently move to another port; refuse instead.
            raise LocalServerError(f"port {self.port} is already in use on 127.0.0.1")
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="invokeai-root-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "invokeai.yaml"
        if not config.exists():
            config.write_text(
                "# Internal metadata - do not edit:\nschema_version: 4.0.3\n\n"
                f"host: 127.0.0.1\nport: {self.port}\n"
            )
        env = dict(os.environ)
        env.update(
            INVOKEAI_HOST="127.0.0.1",
            INVOKEAI_PORT=str(self.port),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            DO_NOT_TRACK="1",
        )
        if self.memory_db:
            env["INVOKEAI_USE_MEMORY_DB"] = "true"
        if self.multiuser:
            env["INVOKEAI_MULTIUSER"] = "true"
        env.update(self.env)
        if self.fast_gc:
            env["INVOKEAI_CLIENT_FAST_GC"] = "1"
        cmd = [str(venv / "bin" / "python"), "-c", _LAUNCHER, "--root", str(self.root)]
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        assert self.process is not None
        while time.monotonic() - started < self.startup_timeout:
            if self.process.poll() is not None:
                raise LocalServerError(
                    f"InvokeAI exited during startup (code {self.process.returncode}):\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/app/version", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise LocalServerError(
            f"InvokeAI was not ready after {self.startup_timeout:.0f}s:\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and delete a root it created."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self._own_root = False

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), keeping its root: for crash tests."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def restart(self, *, attempts: int = 3) -> None:
        """Start again on the same port and root (after :meth:`kill`).

        The launcher skips InvokeAI's startup VACUUM, which raced the queue processor over a
        database with pending items; any other failed start is still tried again, as an
        operator would, up to ``attempts`` times.
        """
        own = self._own_root
        self._own_root = False
        try:
            for attempt in range(1, attempts + 1):
                self.kill()
                self.process = None
                try:
                    self.start()
                    return
                except LocalServerError:
                    if attempt == attempts:
                        raise
        finally:
            self._own_root = own

    def __enter__(self) -> LocalInvokeAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_invokeai(**kwargs: object) -> Iterator[LocalInvokeAI]:
    """Start a :class:`LocalInvokeAI` for the duration of a ``with`` block."""
    server = LocalInvokeAI(**kwargs)  # type: ignore[arg-type]
    with server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invokeai_client.testing.local")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install InvokeAI into the cache venv")
    serve = sub.add_parser("serve", help="start a server and keep it running until Ctrl-C")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--multiuser", action="store_true")
    serve.add_argument("--slow-gc", action="store_true", help="stock gc (slower)")
    args = parser.parse_args(argv)
    if args.command == "install":
        print(ensure_installed())
        return 0
    server = LocalInvokeAI(port=args.port, multiuser=args.multiuser, fast_gc=not args.slow_gc)
    # SIGINT (ignored by default in a shell's background jobs), SIGTERM and SIGHUP all stop
    # the server and remove its root, during startup too: never an orphan InvokeAI.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _stop_serving)
    with contextlib.suppress(_StopServing), server:
        print(f"InvokeAI {INVOKEAI_VERSION} ready at {server.url} ({server.started_in:.1f}s, "
              f"root {server.root})", flush=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    return 0


class _StopServing(BaseException):
    """Raised in the main thread by a stop signal while serving."""


def _stop_serving(signum: int, frame: object) -> None:
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, signal.SIG_IGN)  # a second signal must not cut the cleanup
    raise _StopServing(signal.Signals(signum).name)


if __name__ == "__main__":
    sys.exit(main())
