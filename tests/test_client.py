"""AsyncClient lifecycle, server info, errors, auth and the event stream's connection."""

from __future__ import annotations

import asyncio
import time

import pytest

from invokeai_client import (
    AsyncClient,
    AuthenticationError,
    EndpointNotAvailableError,
    InternalServerError,
    ValidationError,
    errors,
)

from .conftest import ADMIN, USER, Peer, wait_until
from .test_runs import add_graph

pytestmark = pytest.mark.anyio


async def test_server_info_reports_version_and_mode(client: AsyncClient) -> None:
    info = await client.server_info()
    assert info.version == "6.14.2"
    assert info.version_tuple >= (6, 14, 2)
    assert info.multiuser is False
    assert client.is_connected


async def test_html_fallback_route_is_a_clear_error(client: AsyncClient) -> None:
    await client.server_info()
    with pytest.raises(EndpointNotAvailableError) as caught:
        await client._request("GET", "/api/v1/app/config")
    message = str(caught.value)
    assert "/api/v1/app/config" in message
    assert "6.14.2" in message
    assert caught.value.path == "/api/v1/app/config"


async def test_leaving_async_with_leaves_no_task_behind(peer: Peer) -> None:
    before = set(asyncio.all_tasks())
    async with peer.client() as client:
        await client.server_info()
        assert client.is_connected
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and _is_client_task(t)]
    assert leftover == []
    assert not client.is_connected


def _is_client_task(task: asyncio.Task[object]) -> bool:
    # The double's server-side socket tasks live in the same loop; only ours count.
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    ours = "invokeai_client" in filename and "testing" not in filename
    return "async_client" in filename or ours


async def test_bad_constructor_arguments_are_refused_before_any_request() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        AsyncClient("127.0.0.1:9090")
    with pytest.raises(ValidationError, match="email and password"):
        AsyncClient("http://127.0.0.1:9", email="a@b.c")
    with pytest.raises(ValidationError, match="max_retries"):
        AsyncClient("http://127.0.0.1:9", max_retries=-1)


async def test_unreachable_server_is_a_connection_error() -> None:
    from invokeai_client import ConnectionError
    from invokeai_client.testing.local import free_port

    client = AsyncClient(f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(ConnectionError, match="cannot"):
        await client.open()


# -- multi-user -----------------------------------------------------------------------


async def test_multiuser_without_token_is_an_authentication_error(multiuser_peer: Peer) -> None:
    with pytest.raises(AuthenticationError, match="requires a login"):
        async with multiuser_peer.client():
            pass
    async with multiuser_peer.client(events=False) as client:
        info = await client.server_info()
        assert info.multiuser is True
        with pytest.raises(AuthenticationError) as caught:
            await client._request("GET", "/api/v1/auth/me")
        assert caught.value.status == 401


async def test_multiuser_login_works_and_token_stays_secret(multiuser_peer: Peer) -> None:
    async with multiuser_peer.client(email=USER[0], password=USER[1]) as client:
        token = client._http.token
        assert token
        info = await client.server_info()
        assert info.multiuser is True
        assert info.user is not None
        assert info.user.email == USER[0]
        assert client.is_connected
        assert token not in repr(client)
        assert token not in repr(client._http)


async def test_wrong_password_is_a_clear_authentication_error(multiuser_peer: Peer) -> None:
    with pytest.raises(AuthenticationError) as caught:
        async with multiuser_peer.client(email=ADMIN[0], password="not-the-password"):
            pass
    message = str(caught.value)
    assert ADMIN[0] in message
    assert "Incorrect email or password" in message
    assert "not-the-password" not in message


async def test_refreshed_token_is_used_for_later_requests(multiuser_peer: Peer) -> None:
    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as client:
        first = client._http.token
        await asyncio.sleep(1.1)  # JWTs carry whole-second timestamps
        await client._request("PUT", "/api/v1/queue/default/prune")
        refreshed = client._http.token
        assert refreshed
        assert refreshed != first
        me = await client._request("GET", "/api/v1/auth/me")
        assert me["email"] == ADMIN[0]
        if multiuser_peer.double is not None:
            assert multiuser_peer.double.auth_log[-1] == refreshed


# -- retries and the event stream (fault injection) ------------------------------------


async def test_get_is_retried_on_503(double: Peer) -> None:
    assert double.double is not None
    double.double.faults.add("/api/v1/app/version", status=503, times=2)
    async with double.client(max_retries=2, events=False) as client:
        info = await client.server_info()
    assert info.version == "6.14.2"
    assert double.double.count("GET", "/api/v1/app/version") == 3


async def test_retries_give_up_with_the_last_error(double: Peer) -> None:
    assert double.double is not None
    async with double.client(max_retries=1, events=False) as client:  # reads the version
        double.double.faults.add("/api/v1/app/version", status=503, times=None)
        with pytest.raises(InternalServerError) as caught:
            await client.server_info(refresh=True)
    assert caught.value.status == 503
    assert double.double.count("GET", "/api/v1/app/version") == 1 + 2


async def test_retry_after_is_honoured(double: Peer) -> None:
    assert double.double is not None
    async with double.client(events=False) as client:  # reads the version
        double.double.faults.add("/api/v1/app/version", status=429, times=1, retry_after=1)
        started = time.monotonic()
        await client.server_info(refresh=True)
        waited = time.monotonic() - started
    assert waited >= 0.95
    assert double.double.count("GET", "/api/v1/app/version") == 1 + 2


async def test_the_client_timeout_bounds_every_request(double: Peer) -> None:
    # AsyncClient(timeout=...) applies to requests that set no timeout of their own: a server
    # that never answers gives a TimeoutError, not a hang.
    assert double.double is not None
    async with double.client(timeout=0.5, max_retries=0, events=False) as client:
        double.double.faults.add("/api/v1/app/version", delay=5)  # after open read it
        with pytest.raises(errors.TimeoutError) as caught:
            # The outer bound only keeps a regression from hanging the suite.
            await asyncio.wait_for(client.server_info(refresh=True), 4)
    assert "/api/v1/app/version" in str(caught.value)


async def test_a_server_slow_to_accept_the_socket_is_still_reconnected_to(
    double: Peer,
) -> None:
    d = double.double
    assert d is not None
    async with double.client() as client:
        await wait_until(lambda: len(d.subscribe_log) == 1)
        d.socket_connect_delay = 1.5  # longer than python-socketio's own 1 s reconnect wait
        assert await d.drop_sockets() == 1
        await wait_until(lambda: client.is_connected and len(d.subscribe_log) == 2, 20)
        run = await client.runs.submit(add_graph(2, 3))
        assert (await run.result(timeout=60))["sum"] == 5


async def test_post_enqueue_is_never_retried_blindly(double: Peer) -> None:
    assert double.double is not None
    path = "/api/v1/queue/default/enqueue_batch"
    double.double.faults.add(path, status=503, times=1)
    async with double.client(max_retries=3, events=False) as client:
        with pytest.raises(InternalServerError):
            await client._request("POST", path, json={"batch": {}, "prepend": False})
    assert double.double.count("POST", path) == 1


async def test_socket_drop_reconnects_and_resubscribes(double: Peer) -> None:
    d = double.double
    assert d is not None
    async with double.client() as client:
        await wait_until(lambda: len(d.subscribe_log) == 1)
        first_sid = d.subscribe_log[0][0]
        assert await d.drop_sockets() == 1
        await wait_until(lambda: len(d.subscribe_log) >= 2 and client.is_connected)
        assert len(d.subscribe_log) == 2
        sid, queue_id = d.subscribe_log[1]
        assert queue_id == "default"
        assert sid != first_sid
        assert client._events.connect_count == 2
