"""No silent truncation: a sweep larger than the server's queue is refused whole or completed
in parts (issue 10, class 8)."""

from __future__ import annotations

import pytest

from invokeai_client import AsyncClient, QueueFullError, ServerPool
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import node_of

pytestmark = pytest.mark.anyio


async def test_a_batch_the_queue_would_cut_is_refused_and_nothing_of_it_runs(
    double: Peer,
) -> None:
    assert double.double is not None
    double.double.queue.max_queue_size = 7
    double.double.queue.paused = True
    async with double.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        with pytest.raises(QueueFullError) as info:
            await wf.submit_batch({"A": range(10)})
        assert info.value.requested == 10
        assert "ServerPool" in str(info.value)
        assert client.runs.in_flight == 0
        status = await client.queue.status()
    # The double cannot tell its limit up front, so the cut batch was made and canceled.
    assert status.queue.pending == 0
    assert status.queue.in_progress == 0


async def test_the_same_sweep_completes_through_a_one_server_pool(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.max_queue_size = 7
    async with ServerPool([double.url], probe_interval=0.1) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        results = await (await pool.submit_batch(wf, {"A": range(25)}, runs=2))
    assert [r.result[math] for r in results] == [a * 7 for a in range(25)] * 2
    async with AsyncClient(double.url) as client:
        items = await client.queue.get_summaries(await client.queue.item_ids())
    assert sum(i.status == "completed" for i in items) == 50
