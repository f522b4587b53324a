"""Compatibility with older InvokeAI servers: the version table, and opening a client on them.

The table (``invokeai_client._compat``) is pure and tested by rows; the client's behaviour
on an older server runs against the double imitating that version's routes
(``InvokeAIDouble(version=...)``) and, in the compatibility matrix (``bash
scripts/compat.sh``), against the real servers of each version.
"""

from __future__ import annotations

import logging

import pytest

from invokeai_client import AsyncClient, errors
from invokeai_client._compat import FEATURES, ServerFeatures, parse_version
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.testing.double.versions import ROUTE_FEATURES
from invokeai_client.testing.local import (
    INVOKEAI_VERSION,
    LocalServerError,
    installable_versions,
    lock_file,
)

from .conftest import ADMIN

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6.14.2", (6, 14, 2)),
        ("5.15.0", (5, 15, 0)),
        ("6.14.0rc2", (6, 14, 0)),
        ("v6.13.0.rc1", (6, 13, 0)),
        ("6.12", (6, 12, 0)),
        ("6.0.0a10", (6, 0, 0)),
        ("unknown", None),
        ("", None),
        (None, None),
    ],
)
def test_versions_are_read_leniently(text: str | None, expected: tuple[int, ...] | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("version", "feature", "present"),
    [
        ("5.15.0", "multiuser", False),
        ("6.11.1", "multiuser", False),
        ("6.12.0", "multiuser", True),
        ("6.6.0", "queue_cursor_list", True),
        ("6.6.0", "queue_item_ids", False),
        ("6.7.0", "queue_cursor_list", False),
        ("6.7.0", "queue_item_ids", True),
        ("6.14.0", "queue_item_summaries", False),
        ("6.14.1", "queue_item_summaries", True),
        ("5.9.1", "queue_retry", False),
        ("5.10.0", "queue_retry", True),
        ("5.15.0", "queue_delete_item", False),
        ("6.0.0", "queue_delete_item", True),
        ("5.15.0", "enqueue_item_ids", False),
        ("6.0.2", "enqueue_item_ids", True),
        ("6.12.0", "doubled_events", False),
        ("6.13.0", "doubled_events", True),
        ("6.13.8", "doubled_events", True),
        ("6.14.0", "doubled_events", False),
        ("6.12.0", "workflow_meta_v4", False),
        ("6.13.0", "workflow_meta_v4", True),
        ("6.11.1", "models_by_hash", False),
        ("6.12.0", "models_by_hash", True),
        ("unknown", "queue_item_summaries", True),  # unreadable: the reference version
    ],
)
def test_the_feature_table(version: str, feature: str, present: bool) -> None:
    assert ServerFeatures(version).supports(feature) is present


def test_a_missing_feature_is_an_error_naming_both_versions() -> None:
    with pytest.raises(errors.EndpointNotAvailableError) as caught:
        ServerFeatures("5.15.0").require("queue_delete_item")
    assert "5.15.0" in str(caught.value)
    assert "6.0.0" in str(caught.value)
    with pytest.raises(errors.EndpointNotAvailableError) as removed:
        ServerFeatures("6.14.2").require("queue_cursor_list")
    assert "removed in InvokeAI 6.7.0" in str(removed.value)


def test_every_feature_names_what_it_is() -> None:
    for name, feature in FEATURES.items():
        assert feature.name == name
        assert feature.what
        assert feature.until is None or feature.until > feature.since


# -- opening a client on an older server (the double imitating its routes) --------------


@pytest.mark.parametrize("version", ["5.0.0", "5.15.0", "6.0.2", "6.8.1", "6.11.1"])
async def test_a_client_opens_on_a_server_without_accounts(version: str) -> None:
    async with InvokeAIDouble(version=version) as double, AsyncClient(double.url) as client:
        info = await client.server_info()
        assert (info.version, info.multiuser) == (version, False)
        assert client.is_connected
    # The version was read first; the auth route that version lacks was never asked.
    assert double.count("GET", "/api/v1/auth/status") == 0


async def test_the_double_answers_a_missing_route_as_the_old_server() -> None:
    async with InvokeAIDouble(version="5.15.0") as double, AsyncClient(double.url) as client:
        with pytest.raises(errors.NotFoundError):
            await client._request("GET", "/api/v1/auth/status")


async def test_credentials_for_a_server_without_accounts_are_a_clear_error() -> None:
    async with InvokeAIDouble(version="6.8.1") as double:
        client = AsyncClient(double.url, email=ADMIN[0], password=ADMIN[1])
        with pytest.raises(errors.EndpointNotAvailableError) as caught:
            await client.open()
        await client.aclose()
        assert double.count("POST", "/api/v1/auth/login") == 0
    message = str(caught.value)
    assert "email=/password=" in message
    assert "6.8.1" in message
    assert "6.12.0" in message


async def test_a_server_with_accounts_still_reports_its_mode() -> None:
    async with InvokeAIDouble(version="6.12.0", multiuser=True) as double:
        double.add_user(*ADMIN, is_admin=True)
        async with AsyncClient(double.url, email=ADMIN[0], password=ADMIN[1]) as client:
            info = await client.server_info()
    assert (info.version, info.multiuser, info.user and info.user.email) == (
        "6.12.0", True, ADMIN[0]
    )


# -- the supported range: older is refused at open, newer opens with one warning -----------


@pytest.mark.parametrize("version", ["4.2.9", "3.7.0"])
async def test_a_server_older_than_the_oldest_supported_is_refused_at_open(version: str) -> None:
    async with InvokeAIDouble(version=version) as double:
        client = AsyncClient(double.url)
        with pytest.raises(errors.EndpointNotAvailableError) as caught:
            await client.open()
        await client.aclose()
    assert version in str(caught.value)
    assert "5.0.0" in str(caught.value)


async def test_a_server_newer_than_the_newest_tested_opens_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="invokeai_client"):
        async with InvokeAIDouble(version="6.99.1") as double:
            for _ in range(2):
                async with AsyncClient(double.url) as client:
                    assert (await client.server_info()).version == "6.99.1"
    warned = [r.getMessage() for r in caplog.records if "newer than the newest" in r.getMessage()]
    assert len(warned) == 1
    assert "6.99.1" in warned[0]
    assert "6.14.2" in warned[0]


# -- credentials from the environment: used where the server has accounts only ------------


@pytest.mark.parametrize("version", ["5.15.0", "6.14.2"])
@pytest.mark.parametrize("env", [{"INVOKEAI_EMAIL": "a@b.c", "INVOKEAI_PASSWORD": "x"},
                                 {"INVOKEAI_TOKEN": "tok-from-env"}])
async def test_environment_credentials_are_ignored_by_a_server_without_accounts(
    version: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.DEBUG, logger="invokeai_client"):
        async with InvokeAIDouble(version=version) as double, AsyncClient(double.url) as client:
            assert (await client.server_info()).multiuser is False
            assert client._http.token is None  # the token is not sent there
            await client.queue.status()
            assert double.count("POST", "/api/v1/auth/login") == 0
    assert any("ignored" in r.getMessage() and "$INVOKEAI_" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("version", ["5.15.0", "6.14.2"])
async def test_explicit_credentials_for_a_server_without_accounts_are_refused(
    version: str,
) -> None:
    async with InvokeAIDouble(version=version) as double:
        client = AsyncClient(double.url, email=ADMIN[0], password=ADMIN[1])
        with pytest.raises(errors.EndpointNotAvailableError, match="email=/password=") as caught:
            await client.open()
        await client.aclose()
        assert double.count("POST", "/api/v1/auth/login") == 0
    assert version in str(caught.value)


async def test_environment_credentials_log_in_to_a_multi_user_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INVOKEAI_EMAIL", ADMIN[0])
    monkeypatch.setenv("INVOKEAI_PASSWORD", ADMIN[1])
    async with InvokeAIDouble(version="6.14.2", multiuser=True) as double:
        double.add_user(*ADMIN, is_admin=True)
        async with AsyncClient(double.url) as client:
            info = await client.server_info()
        assert info.user is not None
        assert info.user.email == ADMIN[0]
        monkeypatch.setenv("INVOKEAI_PASSWORD", "wrong")
        client = AsyncClient(double.url)
        with pytest.raises(errors.AuthenticationError, match=r"from \$INVOKEAI_EMAIL/"):
            await client.open()
        await client.aclose()


# -- the harness: one pinned lock per version --------------------------------------------


def test_every_supported_release_line_has_a_lock_oldest_first() -> None:
    versions = installable_versions()
    assert versions == sorted(versions, key=parse_version)
    assert versions[0].startswith("5.")
    assert versions[-1] == INVOKEAI_VERSION
    for version in versions:
        text = lock_file(version).read_text()
        assert f"invokeai=={version}" in text.lower()


def test_an_unknown_version_is_refused_naming_the_installable_ones() -> None:
    with pytest.raises(LocalServerError) as caught:
        lock_file("4.2.9")
    assert "4.2.9" in str(caught.value)
    assert INVOKEAI_VERSION in str(caught.value)


def test_the_doubles_route_table_names_real_features() -> None:
    for _method, _path, feature in ROUTE_FEATURES:
        assert feature in FEATURES


def test_every_conformance_test_has_a_row_in_the_compatibility_table() -> None:
    import importlib.util
    from pathlib import Path

    from . import test_compat_conformance

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("compat_table", root / "scripts/compat_table.py")
    assert spec is not None
    assert spec.loader is not None
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    tests = {name for name in dir(test_compat_conformance) if name.startswith("test_")}
    assert tests == set(table.ROWS)
    assert "| 5.15.0 |" in (root / "docs/compatibility.md").read_text()


def test_versions_listing_is_quiet_when_its_reader_stops_early() -> None:
    # `local versions | head -1` (scripts/test.sh picks the oldest version this way): the
    # reader closes the pipe before the listing is written; that is not an error.
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-m", "invokeai_client.testing.local", "versions"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.close()  # before the child has printed anything
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == 0, err
    assert "Traceback" not in err
