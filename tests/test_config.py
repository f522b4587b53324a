"""Client configuration: the environment, timeouts, headers, proxies, TLS, an app's session.

The pure parts (what the environment and the arguments resolve to) are tables; the rest
runs real requests through a real gateway (tests/gateway.py) in front of a real server.
"""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from invokeai_client import AsyncClient, Client, Timeout, ValidationError, errors
from invokeai_client._config import resolve_connection
from invokeai_client.workflows import examples

from .conftest import USER, Peer
from .gateway import Gateway

pytestmark = pytest.mark.anyio

DEFAULT = "http://127.0.0.1:9090"
ENV_NAMES = ("INVOKEAI_URL", "INVOKEAI_TOKEN", "INVOKEAI_EMAIL", "INVOKEAI_PASSWORD")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- what the arguments and the environment resolve to (pure) ------------------------------

URL, TOKEN, EMAIL, PASSWORD = ENV_NAMES
RESOLVE = [
    # (arguments: base_url, token, email, password), environment, expected (+ from_env)
    ((None, None, None, None), {}, (DEFAULT, None, None, None, False)),
    ((None, None, None, None), {URL: "http://h:1"}, ("http://h:1", None, None, None, False)),
    (("http://arg:2", None, None, None), {URL: "http://h:1"},
     ("http://arg:2", None, None, None, False)),
    ((None, None, None, None), {URL: "  "}, (DEFAULT, None, None, None, False)),
    ((None, None, None, None), {TOKEN: "t"}, (DEFAULT, "t", None, None, True)),
    ((None, None, None, None), {EMAIL: "e@x", PASSWORD: "p"}, (DEFAULT, None, "e@x", "p", True)),
    # any credential argument: the environment's credentials are not mixed in
    ((None, "arg", None, None), {EMAIL: "e@x", PASSWORD: "p"},
     (DEFAULT, "arg", None, None, False)),
    ((None, None, "a@x", "q"), {TOKEN: "t"}, (DEFAULT, None, "a@x", "q", False)),
    ((None, None, None, None), {TOKEN: "", EMAIL: ""}, (DEFAULT, None, None, None, False)),
]


@pytest.mark.parametrize(("args", "env", "expected"), RESOLVE)
def test_arguments_win_and_the_environment_fills_in(
    args: tuple[Any, ...], env: dict[str, str], expected: tuple[Any, ...]
) -> None:
    assert tuple(resolve_connection(*args, env=env)) == expected


BAD_ENV = [
    ({TOKEN: "t", EMAIL: "e@x", PASSWORD: "p"}, "INVOKEAI_TOKEN", "both set"),
    ({EMAIL: "e@x"}, "INVOKEAI_PASSWORD", r"\$INVOKEAI_PASSWORD is not set"),
    ({PASSWORD: "p"}, "INVOKEAI_EMAIL", r"\$INVOKEAI_EMAIL is not set"),
]


@pytest.mark.parametrize(("env", "input_name", "message"), BAD_ENV)
def test_a_half_set_environment_is_named(
    env: dict[str, str], input_name: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        resolve_connection(None, None, None, None, env=env)
    assert caught.value.input == input_name


def test_secrets_from_the_environment_stay_out_of_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INVOKEAI_TOKEN", "very-secret-token")
    clean_env.setenv("INVOKEAI_URL", "http://10.1.2.3:9090")
    client = AsyncClient()
    assert client.base_url == "http://10.1.2.3:9090"
    assert "very-secret-token" not in repr(client)
    assert "very-secret-token" not in repr(resolve_connection(None, None, None, None))


TIMEOUTS = [
    (30, Timeout(total=30)),
    (2.5, Timeout(total=2.5)),
    (None, Timeout(total=None)),
    (Timeout(connect=5, read=120, total=None), Timeout(total=None, connect=5, read=120)),
]


@pytest.mark.parametrize(("value", "expected"), TIMEOUTS)
def test_timeout_takes_a_number_or_a_structure(value: Any, expected: Timeout) -> None:
    assert Timeout.of(value) == expected


def test_timeout_maps_onto_aiohttp() -> None:
    limits = Timeout(connect=5, read=120, total=None).to_aiohttp()
    assert (limits.total, limits.sock_connect, limits.sock_read) == (None, 5, 120)


@pytest.mark.parametrize(
    ("kwargs", "input_name"),
    [
        ({"timeout": {"connect": 0}}, "timeout.connect"),  # Timeout(connect=0)
        ({"timeout": "30"}, "timeout"),
        ({"headers": {"X-Key": 1}}, "headers"),
        ({"trust_env": "yes"}, "trust_env"),
        ({"ssl_context": "ca.pem"}, "ssl_context"),
        ({"ssl_context": ssl.create_default_context(), "verify_ssl": False}, "ssl_context"),
        ({"http_session": object()}, "http_session"),
    ],
)
def test_bad_configuration_is_refused_before_any_request(
    kwargs: dict[str, Any], input_name: str
) -> None:
    def construct() -> None:
        options = dict(kwargs)
        if isinstance(options.get("timeout"), dict):
            options["timeout"] = Timeout(**options["timeout"])
        AsyncClient("http://127.0.0.1:9", **options)

    with pytest.raises(ValidationError) as caught:
        construct()
    assert caught.value.input == input_name


# -- the environment alone reaches a multi-user server ------------------------------------


async def _run_noise_sweep(client: AsyncClient) -> None:
    wf = await client.workflows.load(examples.path("noise-sweep"))
    wf.set("Seed", 7).set("Output width", 64).set("Output height", 48)
    result = await (await wf.submit())
    assert result.status == "completed"
    assert result.image.width == 64


async def test_the_environment_alone_logs_in_and_runs_a_workflow(
    multiuser_peer: Peer, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("INVOKEAI_URL", multiuser_peer.url)
    clean_env.setenv("INVOKEAI_EMAIL", USER[0])
    clean_env.setenv("INVOKEAI_PASSWORD", USER[1])
    async with AsyncClient() as client:
        info = await client.server_info()
        assert info.multiuser
        assert info.user is not None
        assert info.user.email == USER[0]
        await _run_noise_sweep(client)
        token = client._http.token
    assert token
    clean_env.delenv("INVOKEAI_EMAIL")
    clean_env.delenv("INVOKEAI_PASSWORD")
    clean_env.setenv("INVOKEAI_TOKEN", token)
    async with AsyncClient() as client:
        info = await client.server_info()
        assert info.user is not None
        assert info.user.email == USER[0]
        await _run_noise_sweep(client)


def test_the_sync_client_reads_the_environment_too(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INVOKEAI_URL", "http://10.9.8.7:9090")
    assert Client().base_url == "http://10.9.8.7:9090"


# -- headers, proxies, TLS, the application's own session ---------------------------------

KEY = ("X-Gateway-Key", "k-123")


async def test_default_headers_pass_an_auth_gateway(peer: Peer) -> None:
    async with Gateway(peer.url, require_header=KEY) as gateway:
        with pytest.raises(errors.InvokeAIError):
            async with AsyncClient(gateway.url, max_retries=0):
                pass
        assert gateway.refused >= 1
        refused = gateway.refused
        async with AsyncClient(gateway.url, headers=dict([KEY])) as client:
            assert client.is_connected  # the socket passed the gateway too
            await _run_noise_sweep(client)
        assert gateway.refused == refused
        assert any(path.startswith("/ws/") for _, path in gateway.seen)


async def test_trust_env_sends_requests_through_the_environment_proxy(
    double: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with Gateway(double.url) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        async with AsyncClient(double.url, events=False) as client:
            await client.server_info()
        assert proxy.proxied == 0  # aiohttp's default: the environment is not trusted
        async with AsyncClient(double.url, trust_env=True) as client:
            await client.server_info()
            await _run_noise_sweep(client)
        assert proxy.proxied >= 2


async def test_an_application_session_is_used_and_left_open(double: Peer) -> None:
    async with Gateway(double.url, require_header=KEY) as gateway:
        async with aiohttp.ClientSession() as session:
            async with AsyncClient(gateway.url, http_session=session, headers=dict([KEY])) as c:
                await _run_noise_sweep(c)
            assert not session.closed  # the application still owns it
            async with session.get(f"{double.url}/api/v1/app/version") as answer:
                assert answer.status == 200
        assert gateway.refused == 0


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, env={**os.environ, "OPENSSL_CONF": "/dev/null"},
    )
    return cert, key


async def test_an_ssl_context_trusts_a_private_certificate(
    double: Peer, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with Gateway(double.url, ssl_context=server_tls) as gateway:
        with pytest.raises(errors.ConnectionError, match="certificate"):
            async with AsyncClient(gateway.url, max_retries=0, events=False) as client:
                await client.server_info()
        trusted = ssl.create_default_context(cafile=str(cert))
        async with AsyncClient(gateway.url, ssl_context=trusted) as client:
            assert client.is_connected
            await _run_noise_sweep(client)
