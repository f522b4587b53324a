"""Reliability, class 3 (the event side): events for batches nobody here claimed are held
bounded by bytes and by time (expired by a timer, not only when another one arrives), and
events naming unknown items of the user's own batch never become runs the server did not
confirm.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from invokeai_client._router import ORPHAN_MAX_BYTES, approx_size

from .conftest import Peer, wait_until
from .test_runs import add_graph

pytestmark = pytest.mark.anyio

MEGABYTE_FRAME = {"item_id": 1, "status": "in_progress", "blob": "x" * 1_000_000}


async def test_orphan_events_are_bounded_by_bytes_and_expire_on_a_timer(double: Peer) -> None:
    assert double.double is not None
    async with double.client() as client:
        orphans = client._router._orphans
        orphans.ttl = 5.0  # long enough to see the newest frame on a loaded machine
        batch_ids = [str(uuid.uuid4()) for _ in range(300)]
        for index, batch_id in enumerate(batch_ids):  # 300 MB for batches not ours
            await double.double.emit(
                "queue_item_status_changed",
                {**MEGABYTE_FRAME, "item_id": index, "batch_id": batch_id},
            )
        # The bounds drop the oldest frames: the newest one is kept once it has arrived.
        await wait_until(lambda: batch_ids[-1] in orphans._per_batch, 60)
        held = orphans.bytes
        assert 0 < held <= ORPHAN_MAX_BYTES
        # nothing else arrives: the timer alone empties the buffer
        await wait_until(lambda: orphans.count == 0, 30)
    assert orphans.bytes == 0


def test_the_size_estimate_sees_big_nested_strings() -> None:
    assert approx_size({"image": {"dataURL": "x" * 10_000}}) >= 10_000
    assert approx_size({"a": [[[["x" * 10_000]]]]}) >= 10_000  # nesting hides nothing
    assert approx_size({"a": list(range(100_000))}) >= 1024 * 1024  # too many to walk: big
    assert approx_size({"item_id": 1, "status": "completed"}) < 200


async def test_events_for_unknown_items_of_my_batch_never_become_runs(double: Peer) -> None:
    assert double.double is not None
    queue = double.double.queue
    flooded = asyncio.Event()
    queue.faults.enqueue_response_until = flooded.is_set  # the items exist; the answer later
    batch_id = str(uuid.uuid4())
    async with double.client() as client:
        submitting = asyncio.ensure_future(client.runs.submit_batch(
            add_graph(1, 2), runs=2, batch_id=batch_id
        ))
        await wait_until(lambda: bool(client.runs.batches))
        for fake in range(2_000):  # a hostile server: items this batch never had
            await double.double.emit("queue_item_status_changed", {
                "queue_id": "default", "batch_id": batch_id, "item_id": 900_000 + fake,
                "status": "in_progress", "status_sequence": 1,
            })
        flooded.set()
        batch = await submitting
        counts = batch.counts
        results = await asyncio.wait_for(batch.results(), 60)
    assert len(batch.item_ids) == 2
    assert all(item_id < 900_000 for item_id in batch.item_ids)
    assert counts.total == 2  # was 2,002: 2,000 phantom runs "in progress"
    assert [r["sum"] for r in results] == [3, 3]


async def test_frames_for_nodes_not_in_the_graph_never_make_a_result(double: Peer) -> None:
    # A hostile (or confused) server tells outputs of nodes the graph does not have, as many
    # as the graph has nodes, then "completed": the client took that for the whole story
    # and settled the run from it, without the real "sum" output.
    server = double.double
    assert server is not None
    server.queue.paused = True
    async with double.client() as client:
        run = await client.runs.submit(add_graph(1, 2))
        common = {"queue_id": "default", "batch_id": run.batch_id, "item_id": run.item_id,
                  "origin": None, "destination": None, "user_id": "system",
                  "session_id": "s", "invocation_source_id": "?"}
        for fake in range(1_000):
            await server.emit("invocation_complete", {
                **common, "invocation_source_id": f"fake{fake}",
                "invocation": {"id": f"prepared{fake}", "type": "integer"},
                "result": {"type": "integer_output", "value": 666, "blob": "x" * 1000},
            })
        await server.emit("queue_item_status_changed", {
            **common, "status": "completed", "status_sequence": 1_000_000,
        })
        server.queue.paused = False
        server.queue.wake()
        result = await asyncio.wait_for(run.result(), 120)
    assert result["sum"] == 3
    assert set(result.outputs) <= {"a", "b", "sum"}
