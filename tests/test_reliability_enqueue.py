"""Reliability, class 1: an enqueue whose fate is unknown (a gateway's 502/504 while InvokeAI
still writes the batch, a timeout, a reset) is never sent again until the server, asked by the
client-chosen batch id for the whole fate window, said it has no such batch.

Against the double with a gateway fault, and against the real server behind a real nginx
whose gateway timeout for enqueues is shorter than the enqueue.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from invokeai_client import AsyncClient, WorkflowRun
from invokeai_client.testing.proxy import NginxProxy, nginx_binary

from .conftest import Peer, wait_until
from .test_runs import add_graph

pytestmark = pytest.mark.anyio

ENQUEUE = "/api/v1/queue/*/enqueue_batch"


class _Counter(logging.Handler):
    """Counts the client's "unknown fate" and "sending it again" log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.unknown = 0
        self.resent = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.unknown += "has an unknown fate" in message
        self.resent += "sending it again" in message


@pytest.fixture
def fates() -> Iterator[_Counter]:
    counter = _Counter()
    logger = logging.getLogger("invokeai_client")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)


def _big_workflow(kilobytes: int) -> dict[str, Any]:
    """A workflow to attach that makes InvokeAI's enqueue take a while (it validates it)."""
    return {
        "name": "big", "author": "", "description": "x" * (kilobytes * 1024), "version": "",
        "contact": "", "tags": "", "notes": "", "exposedFields": [],
        "meta": {"version": "3.0.0", "category": "user"}, "nodes": [], "edges": [],
    }


async def _submit_all(
    client: AsyncClient, count: int, width: int, workflow: dict[str, Any] | None = None
) -> list[WorkflowRun]:
    room = asyncio.Semaphore(width)

    async def one(index: int) -> WorkflowRun:
        async with room:
            return await client.runs.submit(add_graph(index, 1000), workflow=workflow)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _check_delivered_once(client: AsyncClient, runs: list[WorkflowRun]) -> None:
    results = await asyncio.gather(*(run.result(timeout=600) for run in runs))
    assert [r["sum"] for r in results] == [i + 1000 for i in range(len(runs))]
    assert len({r.item_id for r in results}) == len(runs)  # every result once, its own
    totals = await asyncio.gather(*(client.queue.batch_status(r.batch_id) for r in runs))
    assert [t.total for t in totals] == [1] * len(runs)  # items on the server == requested


async def test_a_gateway_error_while_the_batch_is_written_is_adopted_not_resent(
    double: Peer, fates: _Counter
) -> None:
    assert double.double is not None
    double.double.faults.add(ENQUEUE, method="POST", status=502, times=None, handled_after=0.3)
    async with double.client() as client:
        batch = await client.runs.submit_batch(add_graph(1, 2), runs=30)
        results = await batch
        total = (await client.queue.status()).queue.total
        runs = await _submit_all(client, 60, 20)
        await _check_delivered_once(client, runs)
    assert len(results) == 30
    assert total == 30  # was 90: sent three times
    assert double.double.count("POST", ENQUEUE) == 61
    assert (fates.unknown, fates.resent) == (61, 0)


async def test_a_batch_the_server_never_recorded_is_sent_again_after_the_window(
    double: Peer, fates: _Counter
) -> None:
    assert double.double is not None
    double.double.faults.add(ENQUEUE, method="POST", status=504, times=1)
    async with double.client() as client:
        client.runs.enqueue_fate_window = 1.0
        batch = await client.runs.submit_batch(add_graph(1, 2), runs=3)
        results = await batch
        total = (await client.queue.status()).queue.total
    assert [r["sum"] for r in results] == [3, 3, 3]
    assert total == 3
    assert double.double.count("POST", ENQUEUE) == 2
    assert (fates.unknown, fates.resent) == (1, 1)


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/test.sh "
                    "installs it)")
async def test_500_enqueues_through_a_real_proxy_with_gateway_timeouts(
    real_server: Peer, fates: _Counter
) -> None:
    # InvokeAI takes ~30 ms to enqueue a graph with a 300 KB workflow attached (more under
    # this load); the gateway waits 10 ms for its answer, then says 504.
    with NginxProxy(real_server.url, enqueue_timeout=0.01) as proxy:
        async with AsyncClient(proxy.url) as client:
            runs = await _submit_all(client, 500, 25, _big_workflow(300))
            await _check_delivered_once(client, runs)
    print(f"500 enqueues via nginx: {fates.unknown} gateway timeouts, {fates.resent} resent")
    assert fates.unknown > 100  # the gateway timed out enqueues the server went on with


async def test_a_replayed_enqueue_is_seen_canceled_and_reported(double: Peer) -> None:
    # A gateway that sends the enqueue twice (its first try timed out upstream while InvokeAI
    # wrote the batch): the server holds two copies under the client's batch id. The copy
    # the client was not told about is canceled when it starts, and reported.
    server = double.double
    assert server is not None
    server.queue.paused = True
    batch_id = str(uuid.uuid4())
    body = {"batch": {"batch_id": batch_id, "graph": add_graph(1, 2), "runs": 3}}
    async with double.client() as client:
        replayed = await client.context.http.request(  # the copy lands first
            "POST", "/api/v1/queue/default/enqueue_batch", json=body
        )
        batch = await client.runs.submit_batch(add_graph(1, 2), runs=3, batch_id=batch_id)
        copies = set(replayed["item_ids"])
        assert copies.isdisjoint(batch.item_ids)
        server.queue.paused = False
        server.queue.wake()
        results = await asyncio.wait_for(batch.results(), 120)
        await wait_until(lambda: set(batch.copies) == copies, 60)
    assert [r["sum"] for r in results] == [3, 3, 3]
    statuses = {server.queue.items[i].status for i in copies}
    assert statuses <= {"canceled", "completed"}
    assert len(batch.item_ids) == 3


async def test_a_retried_item_of_my_batch_is_no_copy(double: Peer) -> None:
    # A retry makes a new item with the batch's id (retried_from_item_id set): it runs
    # while a batch of that id is tracked, and is left alone.
    server = double.double
    assert server is not None
    server.queue.paused = True
    batch_id = str(uuid.uuid4())
    async with double.client() as client:
        first = await client.runs.submit_batch(add_graph(1, 2), runs=1, batch_id=batch_id)
        await first.cancel()
        await asyncio.wait_for(first.results(), 60)
        await client.queue.retry(first.item_ids)
        (again,) = [i for i, item in server.queue.items.items()
                    if getattr(item, "retried_from_item_id", None) == first.item_ids[0]]
        batch = await client.runs.submit_batch(add_graph(1, 2), runs=1, batch_id=batch_id)
        server.queue.paused = False
        server.queue.wake()
        await asyncio.wait_for(batch.results(), 120)  # the retried item ran first
        await wait_until(lambda: again in batch._tracker.strangers, 60)  # it was looked at
        await wait_until(lambda: client.runs.stats()["background_tasks"] == 0, 60)
        assert batch.copies == []
        await wait_until(lambda: server.queue.items[again].status == "completed", 60)
