"""Runs stay lean: the enqueue answer's echo is not decoded, finished runs and batches are
freed by reference counting, and are still complete when asked for later."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
import weakref

import pytest

from invokeai_client.runs._submit import _answer_ends, read_enqueue_answer

from .conftest import Peer, wait_until
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


async def test_the_enqueue_answer_is_read_from_its_ends(peer: Peer) -> None:
    # The answer echoes the whole batch; the client reads only the counts and item ids, and
    # gets exactly what decoding everything gives, on both servers' JSON styles.
    needs_queue(peer)
    async with peer.client() as client:
        batch_id = str(uuid.uuid4())
        body = {
            "batch": {"batch_id": batch_id, "graph": add_graph(4, 5), "runs": 2,
                      "origin": "tests"},
            "prepend": False,
        }
        raw = await client._request(
            "POST", f"/api/v1/queue/{client.queue_id}/enqueue_batch", json=body,
            expect="bytes",
        )
        full = json.loads(raw)
        ends = _answer_ends(raw)
        assert ends is not None  # the cheap path, not the fallback
        answer = read_enqueue_answer(raw, batch_id)
        assert answer.item_ids == full["item_ids"]
        assert len(answer.item_ids) == 2
        assert (answer.enqueued, answer.requested, answer.priority) == (
            full["enqueued"], full["requested"], full["priority"]
        )
        assert answer.batch_id == batch_id == full["batch"]["batch_id"]
        for _ in range(600):  # let the two items finish before the next test
            if (await client.queue.batch_status(batch_id)).is_done:
                break
            await asyncio.sleep(0.1)


def test_an_enqueue_answer_in_another_key_order_is_decoded_whole() -> None:
    echo = {"batch_id": "b", "graph": {"nodes": {"n": {"priority": 3, "item_ids": [99]}}}}
    odd = {"item_ids": [7, 8], "priority": 1, "batch": echo, "queue_id": "q", "enqueued": 2,
           "requested": 2}
    raw = json.dumps(odd).encode()
    assert _answer_ends(raw) is None
    assert read_enqueue_answer(raw, "b").item_ids == [7, 8]
    usual = {"queue_id": "q", "enqueued": 1, "requested": 1, "batch": echo, "priority": 0,
             "item_ids": [5]}
    answer = _answer_ends(json.dumps(usual, separators=(",", ":")).encode())
    assert answer is not None
    assert (answer.item_ids, answer.priority) == ([5], 0)


async def test_event_frames_are_routed_as_read_across_reconnects(double: Peer) -> None:
    # Socket.IO event frames skip python-engineio's task per message (with the installed
    # python-engineio; an upgrade that changes its shape fails here, not silently), and
    # runs still get every event in order after the socket was dropped and came back.
    d = double.double
    assert d is not None
    async with double.client() as client:
        stream = client._events
        assert stream.inline_events
        sio = stream._sio
        assert sio is not None
        handled = sio.eio._receive_packet
        before = await client.runs.submit(add_graph(1, 2))
        assert (await before)["sum"] == 3
        assert await d.drop_sockets() == 1
        await wait_until(lambda: stream.connect_count == 2 and client.is_connected)
        assert sio.eio._receive_packet is handled  # the same engine.io object reconnected
        runs = [await client.runs.submit(add_graph(i, 1)) for i in range(20)]
        results = [await run for run in runs]
        assert [r["sum"] for r in results] == [i + 1 for i in range(20)]
        events = [type(e).__name__ async for e in runs[-1].events()]
        assert events[0] == "StatusChanged"
        assert events[-1] == "StatusChanged"
        assert client.runs.rest_checks == 0  # the socket told the whole story
