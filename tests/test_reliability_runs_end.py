"""Reliability, class 5: runs always end, and say what really happened.

With the server gone for good and no timeout, ``await run`` ends with one clear error once
the server has been unreachable for ``client.runs.unreachable_after`` seconds (logged); a
``RunTimeoutError`` says whether the server confirmed the cancel.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from invokeai_client import AsyncClient, RunLostError, RunTimeoutError
from invokeai_client.testing import InvokeAIDouble

from .conftest import Peer
from .test_runs import add_graph

pytestmark = pytest.mark.anyio

HANG_GUARD = 120.0
"""A run still waiting after this long counts as never ending."""


async def test_runs_end_once_the_server_is_gone_for_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="invokeai_client")
    double = await InvokeAIDouble().start()
    try:
        async with AsyncClient(double.url) as client:
            client.runs.unreachable_after = 2.0
            client.runs.poll_interval = 0.2
            await client.queue.pause()
            runs = [await client.runs.submit(add_graph(i, 1)) for i in range(5)]
            await double.stop()  # gone for good: no socket, no REST
            outcomes = await asyncio.wait_for(
                asyncio.gather(*runs, return_exceptions=True), HANG_GUARD
            )
    finally:
        await double.stop()
    assert all(isinstance(o, RunLostError) for o in outcomes), outcomes
    assert all("unreachable" in str(o) for o in outcomes)
    ended = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(ended) == 1  # one clear line, not one per run


async def test_a_timeout_says_when_the_cancel_failed(double: Peer) -> None:
    assert double.double is not None
    async with double.client() as client:
        await client.queue.pause()
        try:
            run = await client.runs.submit(add_graph(1, 1))
            double.double.faults.add("*/cancel", method="PUT", status=500, times=None)
            with pytest.raises(RunTimeoutError) as caught:
                await run.result(timeout=0.2)
            double.double.faults.clear()
            still = (await client.queue.get(run.item_id)).status
            await client.queue.cancel(run.item_id)
        finally:
            await client.queue.resume()
    assert not caught.value.canceled
    assert "canceling it failed" in str(caught.value)
    assert "canceled on the server" not in str(caught.value)
    assert still == "pending"  # what the message says: it may still run


async def test_a_timeout_says_when_the_server_canceled(peer: Peer) -> None:
    async with peer.client() as client:
        await client.queue.pause()
        try:
            run = await client.runs.submit(add_graph(2, 2))
            with pytest.raises(RunTimeoutError) as caught:
                await run.result(timeout=0.2)
            status = (await client.queue.get(run.item_id)).status
        finally:
            await client.queue.resume()
    assert caught.value.canceled
    assert "canceled on the server" in str(caught.value)
    assert status == "canceled"
