"""Run a real InvokeAI server on this machine: install it once, start it, stop it.

Used by the test suite (the real peer), by the benchmarks and by ``invokeai-client run``
when no server URL is given. The server is installed from a pinned lock file into a venv in
the user's cache (``$INVOKEAI_CLIENT_CACHE`` or ``~/.cache/invokeai-client``), started on a
free loopback port with a throwaway root, and stopped by its own PID only.

Command line::

    python -m invokeai_client.testing.local install      # once; takes a few minutes
    python -m invokeai_client.testing.local serve        # start, print the URL, wait for Ctrl-C
    python -m invokeai_client.testing.local versions     # the versions with a shipped lock
    python -m invokeai_client.testing.local install --version 5.15.0   # any of them ("all")

InvokeAI 6.14.2 is the default; every other supported version has its own lock in
``locks/`` and its own venv (``invokeai-<version>/``), sharing nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
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
"""The reference version: what the suite runs against unless told otherwise."""
LOCKS = Path(__file__).with_name("locks")
"""One pinned lock per installable version (``invokeai-<version>.lock.txt``)."""
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


def lock_file(version: str = INVOKEAI_VERSION) -> Path:
    """The pinned lock of ``version``; :class:`LocalServerError` when there is none."""
    path = LOCKS / f"invokeai-{version}.lock.txt"
    if not path.is_file():
        raise LocalServerError(
            f"no lock for InvokeAI {version}; installable versions: "
            + ", ".join(installable_versions())
            + " (make one with scripts/invokeai_lock.sh)"
        )
    return path


def installable_versions() -> list[str]:
    """Every version with a lock shipped in the package, oldest first."""
    names = [p.name[len("invokeai-"):-len(".lock.txt")] for p in LOCKS.glob("invokeai-*.lock.txt")]
    return sorted(names, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))


def cache_dir(version: str = INVOKEAI_VERSION) -> Path:
    """Where InvokeAI ``version`` lives (``$INVOKEAI_CLIENT_CACHE`` overrides the base)."""
    env = os.environ.get("INVOKEAI_CLIENT_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return (base if env else base / "invokeai-client") / f"invokeai-{version}"


def venv_dir(version: str = INVOKEAI_VERSION) -> Path:
    return cache_dir(version) / "venv"


def is_installed(version: str = INVOKEAI_VERSION) -> bool:
    return (cache_dir(version) / "installed.json").is_file() and (
        venv_dir(version) / "bin" / "python"
    ).exists()


def _find_python(version: str) -> str:
    for name in PYTHON_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise LocalServerError(
        f"InvokeAI {version} needs Python 3.11 or 3.12 to install; none was found on PATH "
        f"(looked for {', '.join(PYTHON_CANDIDATES)})"
    )


def ensure_installed(version: str = INVOKEAI_VERSION, *, quiet: bool = False) -> Path:
    """Install InvokeAI ``version`` from its lock into the cache if needed; return the venv.

    Safe to call from several processes at once: a lock file serialises installs. Locks
    made by ``scripts/invokeai_lock.sh`` are complete ``pip freeze`` lists and install with
    ``--no-deps`` (some pin a torch other than the release's own pin; see the lock header).
    """
    import fcntl

    lock = lock_file(version)
    root = cache_dir(version)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if is_installed(version):
            return venv_dir(version)
        venv = venv_dir(version)
        if venv.exists():
            shutil.rmtree(venv)
        out = subprocess.DEVNULL if quiet else None
        if not quiet:
            print(f"installing InvokeAI {version} into {venv} (a few minutes, once)",
                  file=sys.stderr)
        subprocess.run([_find_python(version), "-m", "venv", str(venv)], check=True, stdout=out)
        started = time.monotonic()
        header = [line for line in lock.read_text().splitlines() if line.startswith("#")]
        no_deps = ["--no-deps"] if any("--no-deps" in line for line in header) else []
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "-q", *no_deps, "-r", str(lock)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode != 0:
            raise LocalServerError(
                f"installing InvokeAI {version} failed:\n{result.stderr[-3000:]}"
            )
        (root / "installed.json").write_text(
            json.dumps({"version": version, "seconds": time.monotonic() - started})
        )
        return venv


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, below the kernel's ephemeral
    range when there is room: a server that takes a while to bind it (InvokeAI starts in
    20-60 s, and a restart binds the same port again) must not lose it meanwhile to a port
    the kernel hands out to anyone's ``bind(0)`` or outgoing connection."""
    low = _ephemeral_low()
    if low - 1024 >= 4096:
        # SystemRandom: test runners reseed the module's generator, and two runs picking
        # the same sequence would race for the same ports.
        for port in random.SystemRandom().sample(range(max(1024, low - 12288), low), 64):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalInvokeAI:
    """A real InvokeAI server process on 127.0.0.1 (use as a context manager).

    It runs the stock server without its startup VACUUM (see ``_LAUNCHER``). ``fast_gc``
    also freezes the garbage collector's import-time heap (about 100 items/s instead of 2);
    ``version`` picks any version with a shipped lock (:func:`installable_versions`);
    ``memory_db`` keeps its database in memory; ``multiuser`` turns on accounts; ``env``
    adds any ``INVOKEAI_*`` setting. ``torch_threads`` caps torch's CPU threads (1 by
    default: on a busy machine two spinning OpenMP threads made a tiny model's denoising
    step 20x slower); None leaves torch's default. :mod:`.tiny_models` installs random-weight
    test models into it.
    """

    port: int | None = None
    root: Path | None = None
    version: str = INVOKEAI_VERSION
    fast_gc: bool = True
    memory_db: bool = True
    multiuser: bool = False
    startup_timeout: float = 180.0
    env: Mapping[str, str] = field(default_factory=dict)
    torch_threads: int | None = 1
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
        venv = ensure_installed(self.version)
        if self.port is None:
            self.port = free_port()
        elif _port_in_use(self.port):
            # InvokeAI would silently move to another port; refuse instead.
            raise LocalServerError(f"port {self.port} is already in use on 127.0.0.1")
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="invokeai-root-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        # No invokeai.yaml: its schema differs between versions, and the settings come from
        # INVOKEAI_* variables (InvokeAI writes its own default file on first start).
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
        if self.torch_threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.torch_threads)
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
    install = sub.add_parser("install", help="install InvokeAI into the cache venv")
    install.add_argument("--version", default=INVOKEAI_VERSION,
                         help=f"a version with a lock, or 'all' (default {INVOKEAI_VERSION})")
    sub.add_parser("versions", help="list the installable versions and whether installed")
    serve = sub.add_parser("serve", help="start a server and keep it running until Ctrl-C")
    serve.add_argument("--version", default=INVOKEAI_VERSION)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--multiuser", action="store_true")
    serve.add_argument("--slow-gc", action="store_true", help="stock gc (slower)")
    args = parser.parse_args(argv)
    if args.command == "versions":
        lines = [f"{v} {'installed' if is_installed(v) else 'not installed'}"
                 for v in installable_versions()]
        try:
            print("\n".join(lines), flush=True)
        except BrokenPipeError:  # `versions | head -1`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.command == "install":
        versions = installable_versions() if args.version == "all" else [args.version]
        for version in versions:
            print(ensure_installed(version))
        return 0
    server = LocalInvokeAI(port=args.port, multiuser=args.multiuser, fast_gc=not args.slow_gc,
                           version=args.version)
    # SIGINT (ignored by default in a shell's background jobs), SIGTERM and SIGHUP all stop
    # the server and remove its root, during startup too: never an orphan InvokeAI.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _stop_serving)
    with contextlib.suppress(_StopServing), server:
        print(f"InvokeAI {server.version} ready at {server.url} ({server.started_in:.1f}s, "
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
