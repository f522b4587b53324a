"""Test peers: every behaviour test runs against the real InvokeAI and the in-process double.

- ``real``: a real InvokeAI started once per session: 6.14.2, or any version with a shipped
  lock named by ``INVOKEAI_TEST_VERSION`` (``INVOKEAI_TEST_URL`` points the suite at an
  existing server instead).
- ``double``: :class:`invokeai_client.testing.InvokeAIDouble`, started per test.

Use the ``peer`` fixture for tests that must pass on both; ``real_server`` / ``double`` for
tests that need one of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import AsyncClient
from invokeai_client._compat import ServerFeatures
from invokeai_client.testing import InvokeAIDouble, LocalInvokeAI
from invokeai_client.testing.local import INVOKEAI_VERSION
from invokeai_client.types.model_configs import ModelConfig

SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED_WORKFLOWS = SHARED / "fixtures" / "seed-workflows"

TEST_VERSION = os.environ.get("INVOKEAI_TEST_VERSION") or INVOKEAI_VERSION
"""The InvokeAI version of the real peer (and of the double in the compatibility tests)."""

ADMIN = ("admin@example.com", "admin-pass-123")
USER = ("user@example.com", "user-pass-123")


async def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


PEERS = [pytest.param("real", marks=pytest.mark.real), "double"]
"""The ``params`` of a fixture giving both peers: the real one carries the ``real`` marker,
so ``-m "not real"`` runs the double alone (no real server is started)."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Peer:
    """A server the suite talks to: its URL and what kind it is."""

    kind: str  # "real" or "double"
    url: str
    double: InvokeAIDouble | None = None
    server: LocalInvokeAI | None = None

    def client(self, **kwargs: Any) -> AsyncClient:
        return AsyncClient(self.url, **kwargs)


@pytest.fixture(scope="session")
def real_server() -> Iterator[Peer]:
    """The real InvokeAI for the whole session (fast-GC launcher, in-memory DB)."""
    url = os.environ.get("INVOKEAI_TEST_URL")
    if url:
        yield Peer("real", url.rstrip("/"))
        return
    server = LocalInvokeAI(version=TEST_VERSION)
    server.start()
    try:
        yield Peer("real", server.url, server=server)
    finally:
        server.stop()


def _setup_multiuser(url: str) -> None:
    import json
    import urllib.request

    def call(path: str, body: dict[str, Any], token: str | None = None) -> Any:
        req = urllib.request.Request(
            url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    call("/api/v1/auth/setup", {"email": ADMIN[0], "display_name": "Admin", "password": ADMIN[1]})
    token = call("/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})["token"]
    call(
        "/api/v1/auth/users",
        {"email": USER[0], "display_name": "User", "password": USER[1], "is_admin": False},
        token,
    )


@pytest.fixture(scope="session")
def real_multiuser_server() -> Iterator[Peer]:
    """A second real InvokeAI in multi-user mode, with an admin and a user account."""
    if os.environ.get("INVOKEAI_TEST_URL"):
        pytest.skip("multi-user tests start their own server; INVOKEAI_TEST_URL is set")
    if not ServerFeatures(TEST_VERSION).supports("multiuser"):
        pytest.skip(f"InvokeAI {TEST_VERSION} has no multi-user mode (6.12+)")
    server = LocalInvokeAI(multiuser=True, version=TEST_VERSION)
    server.start()
    try:
        _setup_multiuser(server.url)
        yield Peer("real", server.url, server=server)
    finally:
        server.stop()


def _install_tiny_models(peer: Peer, **client_kwargs: Any) -> dict[str, ModelConfig]:
    """Install the tiny random-weight models into a real server (built once, cached;
    installed in place through the SDK)."""
    from invokeai_client.testing.tiny_models import install_tiny_models_blocking

    try:
        return install_tiny_models_blocking(peer.url, **client_kwargs)
    except Exception as exc:
        if peer.server is None:  # INVOKEAI_TEST_URL: maybe a server on another machine
            pytest.skip(f"could not install the tiny models into {peer.url}: {exc}")
        raise


@pytest.fixture(scope="session")
def real_models(real_server: Peer) -> dict[str, ModelConfig]:
    """The tiny random-weight models (tiny-sd1, tiny-sdxl, tiny-sd1-vae, tiny-sd1-lora),
    installed into ``real_server`` on first use; their configs by name."""
    return _install_tiny_models(real_server)


@pytest.fixture(scope="session")
def real_multiuser_models(real_multiuser_server: Peer) -> dict[str, ModelConfig]:
    """The tiny models installed into ``real_multiuser_server`` (by its admin)."""
    return _install_tiny_models(real_multiuser_server, email=ADMIN[0], password=ADMIN[1])


@pytest.fixture
async def double() -> AsyncIterator[Peer]:
    async with InvokeAIDouble() as d:
        yield Peer("double", d.url, double=d)


@pytest.fixture
async def multiuser_double() -> AsyncIterator[Peer]:
    async with InvokeAIDouble(multiuser=True) as d:
        d.add_user(*ADMIN, is_admin=True)
        d.add_user(*USER)
        yield Peer("double", d.url, double=d)


@pytest.fixture(params=PEERS)
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """Each test using this runs twice: against the real server and the double."""
    if request.param == "real":
        yield request.getfixturevalue("real_server")
    else:
        async with InvokeAIDouble() as d:
            yield Peer("double", d.url, double=d)


@pytest.fixture(params=PEERS)
async def multiuser_peer(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    if request.param == "real":
        yield request.getfixturevalue("real_multiuser_server")
    else:
        async with InvokeAIDouble(multiuser=True) as d:
            d.add_user(*ADMIN, is_admin=True)
            d.add_user(*USER)
            yield Peer("double", d.url, double=d)


@pytest.fixture
async def client(peer: Peer) -> AsyncIterator[AsyncClient]:
    async with peer.client() as c:
        yield c
