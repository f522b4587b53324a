"""Reliability, class 6: no token or password in any log record of any library at any level,
and the password is kept only until login.

Runs a real connect (socket included) against both peers with every logger the SDK drives
at DEBUG: python-engineio logs the socket's auth packet, with the token, at INFO.
"""

from __future__ import annotations

import logging

import pytest

from invokeai_client import AsyncClient
from invokeai_client._redact import LOGGERS, redact

from .conftest import ADMIN, Peer

pytestmark = pytest.mark.anyio


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


async def test_no_secret_reaches_any_log_record(
    multiuser_peer: Peer, every_logger_at_debug: pytest.LogCaptureFixture
) -> None:
    caplog = every_logger_at_debug
    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as client:
        first_token = client._http.token
        await client.server_info()
        board = await client.boards.create("secrets-test")  # a change: the token slides
        await client.boards.delete(board)
        tokens = {first_token, client._http.token}
        assert client._password is None  # forgotten once logged in
        async with AsyncClient(multiuser_peer.url, token=client._http.token) as second:
            await second.queue.status()
    assert any(r.name.startswith("engineio") for r in caplog.records)  # a real socket spoke
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    for secret in (*filter(None, tokens), ADMIN[1]):
        assert secret not in text


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        ('Sending packet MESSAGE data 0{"token":"abc.def.ghi-123"}', "abc.def.ghi-123"),
        ("headers {'Authorization': 'Bearer s3cr3t-token'}", "s3cr3t-token"),
        ("login {'email': 'a@b.c', 'password': 'hunter22'}", "hunter22"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen", "eyJhbGciOiJIUzI1NiJ9"),
        ("token=abcdef123456&x=1", "abcdef123456"),
    ],
)
def test_secret_shaped_text_is_redacted(line: str, leak: str) -> None:
    assert leak not in redact(line)
    assert "<redacted>" in redact(line)
