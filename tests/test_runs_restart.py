"""The real server is killed and restarted mid-batch: every run still ends, none hangs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import anyio
import pytest

from invokeai_client import AsyncClient, RunTimeoutError, WorkflowResult
from invokeai_client.testing import LocalInvokeAI

from .test_runs import add_graph

pytestmark = [pytest.mark.anyio, pytest.mark.real, pytest.mark.slow]


@pytest.fixture
def crashable_server() -> Iterator[LocalInvokeAI]:
    """A server of its own (not the session one), with its database on disk so the queue
    survives a crash, and the stock ~0.5 s per item so a batch is still running when killed."""
    if os.environ.get("INVOKEAI_TEST_URL"):
        pytest.skip("this test starts and kills its own server")
    server = LocalInvokeAI(memory_db=False, fast_gc=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def restart(server: LocalInvokeAI) -> None:
    await anyio.to_thread.run_sync(server.restart)


async def test_server_killed_and_restarted_mid_batch_every_run_ends(
    crashable_server: LocalInvokeAI,
) -> None:
    data = [[{"node_path": "a", "field_name": "value", "items": list(range(12))}]]
    async with AsyncClient(crashable_server.url) as client:
        batch = await client.runs.submit_batch(add_graph(0, 100), data=data)
        singles = [await client.runs.submit(add_graph(i, 1000)) for i in range(3)]
        finished: list[WorkflowResult] = []

        async def collect() -> None:
            async for result in batch.as_completed():
                finished.append(result)

        collector = asyncio.ensure_future(collect())
        while len(finished) < 3:  # some items done, one running, the rest pending
            await asyncio.sleep(0.05)
        await anyio.to_thread.run_sync(crashable_server.kill)
        await restart(crashable_server)

        try:
            results = await batch.results(timeout=240)
        except RunTimeoutError:
            # The client ended the wait by its deadline. That is a definite answer only if
            # it is true: every item it still calls unfinished must be unfinished on the
            # server too (InvokeAI can keep an item it was running when it was killed).
            for run in batch.runs:
                if not run.done:
                    item = await client.queue.get(run.item_id)
                    assert item.status not in ("completed", "failed", "canceled"), (
                        f"item {run.item_id} is {item.status} on the server but the run "
                        f"missed it:\n{crashable_server.log_tail(40)}"
                    )
            pytest.skip(
                "InvokeAI kept an item unfinished after the restart; the client reported "
                "it truthfully at its deadline"
            )
        single_results = [await run.batch.results(timeout=120) for run in singles]
        await asyncio.wait_for(collector, 60)
        # REST can deliver every result before the socket's next reconnect attempt; the
        # stream must still come back by itself within a few back-off periods.
        with anyio.fail_after(120):
            while not client.is_connected:
                await asyncio.sleep(0.1)

    assert len(results) == 12
    assert len(finished) == 12
    assert len({r.item_id for r in finished}) == 12
    statuses = [r.status for r in results]
    assert set(statuses) <= {"completed", "canceled"}
    assert statuses.count("completed") >= 3
    for result in results:
        if result.ok:
            assert result["sum"] == result.field_values["a.value"] + 100
    for i, (single,) in enumerate(single_results):
        assert single.status in ("completed", "canceled")
        if single.ok:
            assert single["sum"] == i + 1000
