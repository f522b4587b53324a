"""Runs under faults only the double can stage on demand: dropped sockets, doubled, late,
shuffled or missing events, lost enqueue answers, a slow reader."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from invokeai_client import (
    AsyncClient,
    NodeCompleted,
    NodeProgress,
    RunEvent,
    StatusChanged,
    WorkflowResult,
)
from invokeai_client.testing import InvokeAIDouble

from .conftest import Peer, wait_until
from .helpers import items_ended
from .test_runs import add_graph, div_graph, image_graph, iterate_graph

pytestmark = [pytest.mark.anyio, pytest.mark.double]


def engine(peer: Peer) -> Any:
    double = peer.double
    assert isinstance(double, InvokeAIDouble)
    queue = getattr(double, "queue", None)
    if queue is None:
        pytest.skip("the double has no queue engine")
    return queue


async def batch_total(client: AsyncClient, batch_id: str) -> int:
    status = await client._request("GET", f"/api/v1/queue/{client.queue_id}/b/{batch_id}/status")
    return int(status["total"])


async def test_200_runs_survive_a_socket_dropped_again_and_again(double: Peer) -> None:
    queue = engine(double)
    queue.faults.node_delay = 0.002
    data = [[{"node_path": "a", "field_name": "value", "items": list(range(100))}]]
    async with double.client() as client:
        queue.faults.drop_sockets_every = 0.15
        singles = await asyncio.gather(
            *(client.runs.submit(add_graph(i, 10_000)) for i in range(100))
        )
        batch = await client.runs.submit_batch(add_graph(0, 20_000), data=data)
        delivered: Counter[int] = Counter()

        async def drain_batch() -> list[WorkflowResult]:
            results = []
            async for result in batch.as_completed():
                delivered[result.item_id] += 1
                results.append(result)
            return results

        async def await_single(i: int) -> WorkflowResult:
            result = await singles[i].result(timeout=60)
            delivered[result.item_id] += 1
            return result

        from_batch, from_singles = await asyncio.wait_for(
            asyncio.gather(drain_batch(), asyncio.gather(*(await_single(i) for i in range(100)))),
            120,
        )
        queue.faults.drop_sockets_every = None
        drops = client._events.disconnect_count
    assert drops >= 2  # the socket really went down repeatedly while the runs were in flight
    assert len(delivered) == 200
    assert set(delivered.values()) == {1}
    for i, result in enumerate(from_singles):
        assert result["sum"] == i + 10_000
    assert len(from_batch) == 100
    for result in from_batch:
        assert result["sum"] == result.field_values["a.value"] + 20_000


async def test_doubled_events_give_no_doubled_outputs(double: Peer) -> None:
    queue = engine(double)
    queue.faults.duplicate_events = True
    queue.faults.progress_steps = 3
    async with double.client() as client:
        run = await client.runs.submit(image_graph())
        events = [event async for event in run.events()]
        result = await run
        looped = await (await client.runs.submit(iterate_graph(3)))
        repeats = client._router.repeats
    completed = [e for e in events if isinstance(e, NodeCompleted)]
    assert Counter(e.node_id for e in completed) == {"blank": 1, "blur": 1, "save": 1, "n": 1}
    assert [e.status for e in events if isinstance(e, StatusChanged)] == [
        "in_progress", "completed"
    ]
    assert len(result.images) == 1
    assert looped["plus"] == [100, 101, 102]
    assert repeats > 0


async def test_events_that_overtake_the_enqueue_answer_are_kept(double: Peer) -> None:
    queue = engine(double)
    queue.faults.enqueue_response_until = items_ended(queue)  # the items end before the answer
    queue.faults.enqueue_response_delay = 0.3  # and their events reach the client
    async with double.client() as client:
        run = await client.runs.submit(add_graph(2, 3))
        assert run.done  # settled from events that arrived before submit() returned
        result = await run
        batch = await client.runs.submit_batch(
            add_graph(0, 1), data=[[{"node_path": "a", "field_name": "value", "items": [1, 2]}]]
        )
        assert batch.done
        results = await batch
        checks = client.runs.rest_checks
    assert result["sum"] == 5
    assert [r["sum"] for r in results] == [2, 3]
    assert checks == 0  # nothing had to be read over REST


@pytest.mark.parametrize("lost_as", [502, None], ids=["bad-gateway", "connection-cut"])
async def test_a_lost_enqueue_answer_is_recovered_never_sent_twice(
    double: Peer, lost_as: int | None
) -> None:
    queue = engine(double)
    queue.faults.lose_enqueue_responses = 1
    queue.faults.lost_enqueue_status = lost_as
    async with double.client() as client:
        batch = await client.runs.submit_batch(
            add_graph(0, 7),
            data=[[{"node_path": "a", "field_name": "value", "items": [1, 2, 3]}]],
        )
        results = await batch
        total = await batch_total(client, batch.batch_id)
    assert double.double is not None
    assert double.double.count("POST", "/api/v1/queue/*/enqueue_batch") == 1
    assert total == 3
    assert [r["sum"] for r in results] == [8, 9, 10]


async def test_an_enqueue_the_server_never_recorded_is_sent_again_once(double: Peer) -> None:
    """A 5xx may come from a gateway while the server still writes the batch, so the batch
    is sent again only after the server said "no such batch" for the whole fate window."""
    assert double.double is not None
    engine(double)
    double.double.faults.add("/api/v1/queue/*/enqueue_batch", method="POST", status=503)
    async with double.client() as client:
        client.runs.enqueue_fate_window = 0.5
        run = await client.runs.submit(add_graph(4, 4))
        result = await run
        total = await batch_total(client, run.batch_id)
    assert result["sum"] == 8
    assert double.double.count("POST", "/api/v1/queue/*/enqueue_batch") == 2
    assert total == 1


async def test_silent_events_runs_still_finish_by_polling(double: Peer) -> None:
    queue = engine(double)
    queue.faults.silent_events = True
    async with double.client() as client:
        client.runs.quiet_after = 0.2
        run = await client.runs.submit(iterate_graph(2))
        failing = await client.runs.submit(div_graph(1, 0))
        result = await run.result(timeout=30)
        failed = (await failing.batch.results(timeout=30))[0]
    assert result["plus"] == [100, 101]
    assert failed.status == "failed"
    assert failed.error_node_id == "d"
    assert failed.error_type == "ZeroDivisionError"


async def test_shuffled_events_still_give_the_right_result(double: Peer) -> None:
    queue = engine(double)
    queue.faults.shuffle_item_events = True
    queue.faults.seed = 7
    async with double.client() as client:
        results = await asyncio.gather(
            *[(await client.runs.submit(image_graph(8 + i, 8))).result(timeout=30)
              for i in range(5)]
        )
        sums = await asyncio.gather(
            *[(await client.runs.submit(add_graph(i, 100))).result(timeout=30) for i in range(5)]
        )
    for i, result in enumerate(results):
        assert set(result.outputs) == {"blank", "blur", "save", "n"}
        assert result.images[0].width == 8 + i
    assert [r["sum"] for r in sums] == [100, 101, 102, 103, 104]


async def test_a_slow_reader_holds_up_nobody_and_loses_no_terminal_event(double: Peer) -> None:
    queue = engine(double)
    queue.faults.progress_steps = 300
    async with double.client() as client:
        slow = await client.runs.submit(image_graph())
        reader = slow.events()
        first = await reader.__anext__()  # then stop reading for a while
        other = await (await client.runs.submit(add_graph(1, 1))).result(timeout=30)
        await slow.result(timeout=30)
        rest = [first] + [event async for event in reader]
    assert other["sum"] == 2
    progress = [e for e in rest if isinstance(e, NodeProgress)]
    assert 0 < len(progress) < 300 * 3  # coalesced, not all kept
    assert isinstance(rest[-1], StatusChanged)
    assert rest[-1].status == "completed"
    assert {e.node_id for e in rest if isinstance(e, NodeCompleted)} == {
        "blank", "blur", "save", "n"
    }


async def test_runs_that_end_while_the_socket_is_down_settle_without_waiting(
    double: Peer,
) -> None:
    queue = engine(double)
    assert double.double is not None
    ended = items_ended(queue)
    d = double.double
    # The item runs and ends unheard, and the socket is back before the answer.
    queue.faults.enqueue_response_until = lambda: ended() and len(d.subscribe_log) >= 2
    async with double.client() as client:
        await wait_until(lambda: len(d.subscribe_log) == 1, 60)
        await double.double.drop_sockets()
        run = await client.runs.submit(add_graph(20, 22))  # runs and ends unheard
        assert client.is_connected
        result = await run.result(timeout=20)  # far less than the 30 s quiet period
    assert result["sum"] == 42


async def collect(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    return [event async for event in events]


async def test_progress_carries_preview_images_in_step_order(double: Peer) -> None:
    pil = pytest.importorskip("PIL.Image")
    queue = engine(double)
    queue.faults.progress_steps = 4
    queue.faults.progress_preview = (24, 16)
    async with double.client() as client:
        # Progress is live only: the reader must be listening before the item runs (an
        # instant item may otherwise end before run.events() is first read, as on 3.13).
        queue.paused = True
        run = await client.runs.submit(add_graph(1, 2))
        reader = asyncio.ensure_future(collect(run.events()))  # listens before the wake-up
        queue.paused = False
        queue.wake()
        with anyio.fail_after(60):
            events = await reader
            result = await run
    progress = [e for e in events if isinstance(e, NodeProgress) and e.node_id == "sum"]
    assert [e.percentage for e in progress] == [0.25, 0.5, 0.75, 1.0]
    brightness = []
    for event in progress:
        data = event.preview_bytes()
        assert data is not None
        assert data[:3] == b"\xff\xd8\xff"
        assert event.image is not None
        assert (event.image.width, event.image.height) == (24, 16)
        picture = pil.open(io.BytesIO(data))
        assert picture.size == (24, 16)
        brightness.append(picture.convert("L").getpixel((0, 0)))
    assert brightness == sorted(brightness)
    assert brightness[0] < brightness[-1]
    assert result["sum"] == 3
