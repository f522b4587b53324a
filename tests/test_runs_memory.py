"""Finished runs and batches: freed by reference counting, still complete when asked later."""

from __future__ import annotations

import gc
import weakref

import pytest

from .conftest import Peer
from .test_runs import add_graph, needs_queue

pytestmark = pytest.mark.anyio

SWEEP = [[{"node_path": "a", "field_name": "value", "items": [10, 20, 30]}]]


async def test_a_finished_batch_still_gives_every_run_after_the_caller_dropped_them(
    peer: Peer,
) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        batch = await client.runs.submit_batch(add_graph(0, 1), data=SWEEP)
        await batch
        ids = batch.item_ids
        single = await client.runs.submit(add_graph(2, 3))
        await single
        single_batch = single.batch
        del single
        gc.collect()  # whatever only the batch refers to is gone now

        runs = batch.runs
        assert [run.item_id for run in runs] == ids
        assert all(run.done and run.status == "completed" for run in runs)
        assert [(await run)["sum"] for run in runs] == [11, 21, 31]
        assert [r.field_values for r in await batch.results()] == [
            {"a.value": 10}, {"a.value": 20}, {"a.value": 30}
        ]
        assert [r["sum"] async for r in batch.as_completed()] == [11, 21, 31]
        assert batch.runs[1] is runs[1]  # one object per item while anyone holds it
        (again,) = single_batch.runs
        assert (await again)["sum"] == 5
        events = [event async for event in again.events()]
        assert events[-1].status == "completed"


async def test_finished_runs_are_freed_without_the_cycle_collector(double: Peer) -> None:
    # Thousands of runs a minute must not pile up for the cycle collector (whose full passes
    # stall the event loop): a finished run and its batch go as soon as nobody holds them.
    async with double.client() as client:
        gc.collect()
        gc.disable()
        try:
            run = await client.runs.submit(add_graph(1, 2))
            await run
            batch = await client.runs.submit_batch(add_graph(0, 1), data=SWEEP)
            await batch
            refs = [weakref.ref(run), weakref.ref(run.batch), weakref.ref(batch)]
            refs += [weakref.ref(item) for item in batch.runs]
            del run, batch
            assert [ref() for ref in refs] == [None] * len(refs)
        finally:
            gc.enable()
