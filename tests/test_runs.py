"""Runs against the real InvokeAI and the double: submit, await, events, failures, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from invokeai_client import (
    AsyncClient,
    ImageRef,
    NodeCompleted,
    NodeFailed,
    NodeStarted,
    RunCanceledError,
    RunFailedError,
    StatusChanged,
    ValidationError,
    WorkflowResult,
)
from invokeai_client.testing import double as double_module

from .conftest import Peer, wait_until
from .helpers import edge, queue_item

pytestmark = pytest.mark.anyio


def needs_queue(peer: Peer) -> None:
    """Skip on a double that has no queue engine yet."""
    if peer.kind == "double" and "queue" not in double_module.AREAS:
        pytest.skip("the double has no queue engine yet")


# -- graphs of model-free nodes ---------------------------------------------------------


def add_graph(a: int, b: int) -> dict[str, Any]:
    return {
        "nodes": {
            "a": {"id": "a", "type": "integer", "value": a, "use_cache": False},
            "b": {"id": "b", "type": "integer", "value": b, "use_cache": False},
            "sum": {"id": "sum", "type": "add", "use_cache": False},
        },
        "edges": [edge("a", "value", "sum", "a"), edge("b", "value", "sum", "b")],
    }


def div_graph(a: int, b: int) -> dict[str, Any]:
    return {"nodes": {"d": {"id": "d", "type": "div", "a": a, "b": b, "use_cache": False}},
            "edges": []}


def missing_input_graph() -> dict[str, Any]:
    return {"nodes": {"bl": {"id": "bl", "type": "img_blur", "use_cache": False}}, "edges": []}


def image_graph(width: int = 32, height: int = 24) -> dict[str, Any]:
    return {
        "nodes": {
            "blank": {"id": "blank", "type": "blank_image", "width": width, "height": height,
                      "is_intermediate": True, "use_cache": False},
            "blur": {"id": "blur", "type": "img_blur", "radius": 1, "is_intermediate": True,
                     "use_cache": False},
            "save": {"id": "save", "type": "save_image", "use_cache": False},
            "n": {"id": "n", "type": "integer", "value": 5, "use_cache": False},
        },
        "edges": [edge("blank", "image", "blur", "image"), edge("blur", "image", "save", "image")],
    }


def iterate_graph(stop: int = 3) -> dict[str, Any]:
    return {
        "nodes": {
            "r": {"id": "r", "type": "range", "start": 0, "stop": stop, "step": 1,
                  "use_cache": False},
            "it": {"id": "it", "type": "iterate", "use_cache": False},
            "plus": {"id": "plus", "type": "add", "b": 100, "use_cache": False},
            "col": {"id": "col", "type": "collect", "use_cache": False},
        },
        "edges": [
            edge("r", "collection", "it", "collection"),
            edge("it", "item", "plus", "a"),
            edge("plus", "value", "col", "item"),
        ],
    }


@asynccontextmanager
async def paused(client: AsyncClient) -> AsyncIterator[None]:
    """Hold the server's queue processor so items stay pending."""
    queue = f"/api/v1/queue/{client.queue_id}"
    await client._request("PUT", f"{queue}/processor/pause")
    try:
        yield
    finally:
        await client._request("PUT", f"{queue}/processor/resume")


# -- the must-shows -----------------------------------------------------------------------


async def test_fifty_concurrent_submits_each_get_their_own_result(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:

        async def one(i: int) -> tuple[int, WorkflowResult]:
            run = await client.runs.submit(add_graph(i, 1000 * i))
            return i, await run

        answers = await asyncio.gather(*(one(i) for i in range(50)))
    for i, result in answers:
        assert result.ok
        assert result["sum"] == i + 1000 * i
        assert result.outputs["a"] == i
    assert len({result.item_id for _, result in answers}) == 50
    assert len({result.batch_id for _, result in answers}) == 50


async def test_a_sweep_of_100_yields_each_result_exactly_once(peer: Peer) -> None:
    needs_queue(peer)
    data = [
        [{"node_path": "a", "field_name": "value", "items": list(range(10))}],
        [{"node_path": "b", "field_name": "value", "items": [100 * k for k in range(10)]}],
    ]
    async with peer.client() as client:
        batch = await client.runs.submit_batch(add_graph(0, 0), data=data)
        assert len(batch) == 100
        seen: list[WorkflowResult] = []
        async for result in batch.as_completed():
            seen.append(result)
        assert batch.counts.completed == 100
        assert batch.counts.pending == 0
        in_order = await batch.results()
        sample = await queue_item(client, in_order[37].item_id)
    assert len(seen) == 100
    assert len({r.item_id for r in seen}) == 100
    for result in seen:
        assert result.ok
        values = result.field_values
        assert result["sum"] == values["a.value"] + values["b.value"]
    # Submission order is InvokeAI's expansion order: cartesian, first group outermost.
    assert [r.field_values for r in in_order[:3]] == [
        {"a.value": 0, "b.value": 0}, {"a.value": 0, "b.value": 100}, {"a.value": 0, "b.value": 200}
    ]
    server_values = {f"{v['node_path']}.{v['field_name']}": v["value"]
                     for v in sample["field_values"]}
    assert server_values == in_order[37].field_values


async def test_events_arrive_in_order_and_outputs_equal_the_rest_item(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        run = await client.runs.submit(image_graph())
        events = [event async for event in run.events()]
        result = await run
        item = await queue_item(client, run.item_id)
        again = await client.runs.attach(run.item_id)
        from_rest = await again
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], StatusChanged)
    assert events[0].status == "in_progress"
    assert isinstance(events[-1], StatusChanged)
    assert events[-1].status == "completed"
    assert kinds.count("StatusChanged") == 2
    for node_id in ("blank", "blur", "save", "n"):
        started = next(i for i, e in enumerate(events)
                       if isinstance(e, NodeStarted) and e.node_id == node_id)
        completed = next(i for i, e in enumerate(events)
                         if isinstance(e, NodeCompleted) and e.node_id == node_id)
        assert 0 < started < completed < len(events) - 1
    completed_outputs = {e.node_id: e.output for e in events if isinstance(e, NodeCompleted)}
    assert completed_outputs == dict(result.outputs)

    # The outputs are the queue item's session.results, mapped.
    session = item["session"]
    for node_id, prepared in session["source_prepared_mapping"].items():
        raw = session["results"][prepared[0]]
        if raw["type"] == "image_output":
            assert result[node_id] == ImageRef(raw["image"]["image_name"], raw["width"],
                                               raw["height"])
        else:
            assert result[node_id] == raw["value"]
    assert result["n"] == 5
    assert len(result.images) == 1  # only the saved image: the others are intermediate
    assert result.images[0] == result["save"]
    # Both paths (events as they arrive, REST session.results) give the same result.
    assert from_rest == result


async def test_iterated_nodes_map_to_lists_the_same_on_both_paths(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        run = await client.runs.submit(iterate_graph(4))
        result = await run
        from_rest = await (await client.runs.attach(run.item_id))
    assert result["plus"] == [100, 101, 102, 103]
    assert result["col"] == [100, 101, 102, 103]
    assert result["r"] == [0, 1, 2, 3]
    assert [o["index"] for o in result["it"]] == [0, 1, 2, 3]
    assert from_rest == result


async def test_images_download_and_save_under_a_safe_name(peer: Peer, tmp_path: Any) -> None:
    needs_queue(peer)
    if peer.kind == "double" and "images" not in double_module.AREAS:
        pytest.skip("the double has no image routes yet")
    async with peer.client() as client:
        result = await (await client.runs.submit(image_graph(40, 30)))
        image = result.images[0]
        data = await image.download()
        path = await image.save(tmp_path / "out")
        hostile = await image.save(tmp_path / "out", name="../../.evil/..\\x.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.parent == tmp_path / "out"
    assert path.name == image.image_name
    assert path.read_bytes() == data
    assert (image.width, image.height) == (40, 30)
    assert hostile.parent == tmp_path / "out"
    assert hostile.name == "x.png"
    assert hostile.read_bytes() == data


async def test_a_runtime_failure_raises_with_item_node_type_and_message(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        run = await client.runs.submit(div_graph(1, 0))
        with pytest.raises(RunFailedError) as caught:
            await run
        events = [event async for event in run.events()]
    error = caught.value
    assert error.item_id == run.item_id
    assert error.batch_id == run.batch_id
    assert error.node_id == "d"
    assert error.error_type == "ZeroDivisionError"
    assert error.error_message == "division by zero"
    assert error.traceback
    assert "ZeroDivisionError" in error.traceback
    assert "'d'" in str(error)
    assert "ZeroDivisionError" in str(error)
    assert isinstance(events[-2], NodeFailed)
    assert events[-2].node_id == "d"
    assert isinstance(events[-1], StatusChanged)
    assert events[-1].status == "failed"


async def test_a_missing_required_input_raises_with_the_node(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        run = await client.runs.submit(missing_input_graph())
        result = await run.batch.results()
        with pytest.raises(RunFailedError) as caught:
            await run
    assert result[0].status == "failed"
    error = caught.value
    assert error.item_id == run.item_id
    assert error.node_id == "bl"
    assert error.error_type == "MissingInputException"
    assert error.error_message is not None
    assert "image" in error.error_message


async def test_cancelling_one_runs_task_cancels_its_item_and_no_other(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        async with paused(client):
            runs = [await client.runs.submit(add_graph(i, i)) for i in range(3)]
            tasks = [asyncio.ensure_future(run.result()) for run in runs]
            await asyncio.sleep(0.05)
            tasks[1].cancel()
            with pytest.raises(asyncio.CancelledError):
                await tasks[1]
            middle = await queue_item(client, runs[1].item_id)
            others = [await queue_item(client, runs[i].item_id) for i in (0, 2)]
            assert middle["status"] == "canceled"
            assert [o["status"] for o in others] == ["pending", "pending"]
        done = await asyncio.gather(tasks[0], tasks[2])
        with pytest.raises(RunCanceledError):
            await runs[1]
    assert [r["sum"] for r in done] == [0, 4]


async def test_cancelling_a_batch_cancels_all_its_pending_items(peer: Peer) -> None:
    needs_queue(peer)
    data = [[{"node_path": "a", "field_name": "value", "items": [1, 2, 3, 4, 5]}]]
    async with peer.client() as client, paused(client):
        batch = await client.runs.submit_batch(add_graph(0, 1), data=data)
        assert batch.counts.pending == 5
        canceled = await batch.cancel()
        results = await batch.results()
        status = await client._request(
            "GET", f"/api/v1/queue/{client.queue_id}/b/{batch.batch_id}/status"
        )
    assert canceled == 5
    assert [r.status for r in results] == ["canceled"] * 5
    assert batch.counts.canceled == 5
    assert status["canceled"] == 5
    assert status["pending"] == 0


async def test_leaving_the_client_settles_every_run_and_leaves_no_task(peer: Peer) -> None:
    needs_queue(peer)
    before = set(asyncio.all_tasks())
    async with peer.client() as watcher:
        async with paused(watcher):
            async with peer.client() as client:
                kept = await client.runs.submit(add_graph(1, 1))
                left = (await client.runs.submit(add_graph(2, 2))).detach()
            with pytest.raises(RunCanceledError):
                await kept
            with pytest.raises(Exception, match="left"):
                await left
            assert (await queue_item(watcher, kept.item_id))["status"] == "canceled"
            assert (await queue_item(watcher, left.item_id))["status"] == "pending"
        assert (await (await watcher.runs.attach(left.item_id)))["sum"] == 4
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and _ours(t)]
    assert leftover == []


async def test_a_result_deadline_cancels_the_item(peer: Peer) -> None:
    needs_queue(peer)
    from invokeai_client import RunTimeoutError

    async with peer.client() as client, paused(client):
        run = await client.runs.submit(add_graph(1, 2))
        with pytest.raises(RunTimeoutError) as caught:
            await run.result(timeout=0.2)
        assert caught.value.canceled
        assert caught.value.item_id == run.item_id
        await wait_until(lambda: run.done)
        assert (await queue_item(client, run.item_id))["status"] == "canceled"


async def test_max_concurrency_caps_items_in_flight(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client(max_concurrency=3) as client:
        peak = 0

        async def one(i: int) -> int:
            nonlocal peak
            run = await client.runs.submit(add_graph(i, 1))
            peak = max(peak, client.runs.in_flight)
            return int((await run)["sum"])

        sums = await asyncio.gather(*(one(i) for i in range(12)))
    assert sums == [i + 1 for i in range(12)]
    assert peak <= 3


async def test_bad_batches_are_refused_before_any_request(double: Peer) -> None:
    async with double.client() as client:
        assert double.double is not None
        sent = len(double.double.requests)
        graph = add_graph(1, 2)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"data": [[{"node_path": "a", "field_name": "value", "items": ["x"]}]]},
             "a.value"),
            ({"data": [[{"node_path": "zz", "field_name": "value", "items": [1]}]]}, "zz.value"),
            ({"data": [[{"node_path": "a", "field_name": "value", "items": [1, "2"]}]]},
             "a.value"),
            ({"data": [[{"node_path": "a", "field_name": "value", "items": [1, 2]},
                        {"node_path": "b", "field_name": "value", "items": [1]}]]}, "b.value"),
            ({"runs": 0}, "runs"),
        ]
        for extra, where in cases:
            with pytest.raises(ValidationError) as caught:
                await client.runs.submit_batch(graph, **extra)
            assert caught.value.input == where
        with pytest.raises(ValidationError, match="submit_batch"):
            await client.runs.submit(graph, data=[[{"node_path": "a", "field_name": "value",
                                                    "items": [1, 2]}]])
        assert len(double.double.requests) == sent


async def test_a_client_without_events_polls_rest(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client(events=False) as client:
        client.runs.poll_interval = 0.1
        results = await asyncio.gather(
            *[(await client.runs.submit(add_graph(i, 1))).result(timeout=60) for i in range(3)]
        )
    assert [r["sum"] for r in results] == [1, 2, 3]


def _ours(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return ("invokeai_client" in filename and "testing" not in filename) or (
        "async_client" in filename
    )


async def test_two_users_run_side_by_side_and_ignore_each_others_copies(
    multiuser_peer: Peer,
) -> None:
    if multiuser_peer.kind == "double" and "queue" not in double_module.AREAS:
        pytest.skip("the double has no queue engine yet")
    from .conftest import ADMIN, USER

    async with multiuser_peer.client(email=USER[0], password=USER[1]) as user, \
            multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as admin:

        async def both(i: int) -> tuple[WorkflowResult, WorkflowResult]:
            mine = await user.runs.submit(add_graph(i, 1))
            theirs = await admin.runs.submit(add_graph(i, 500))
            return await mine, await theirs

        pairs = await asyncio.gather(*(both(i) for i in range(5)))
        ignored = user._router.stats()["ignored"]
    for i, (mine, theirs) in enumerate(pairs):
        assert mine["sum"] == i + 1
        assert theirs["sum"] == i + 500
    assert ignored > 0  # the admin's items reached the user only as redacted copies


async def test_closing_fails_submits_still_waiting_for_room(double: Peer) -> None:
    from invokeai_client import InvokeAIError

    async with double.client() as watcher, paused(watcher):
        client = double.client(max_concurrency=1)
        await client.open()
        first = await client.runs.submit(add_graph(1, 1))
        waiting = asyncio.ensure_future(client.runs.submit(add_graph(2, 2)))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # no room: max_concurrency=1 and the first is pending
        await client.aclose()
        with pytest.raises(InvokeAIError, match="closed"):
            await waiting
        with pytest.raises(RunCanceledError):
            await first


async def test_a_failed_or_canceled_run_is_retried_as_a_new_item_of_its_batch(
    peer: Peer,
) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        failing = await client.runs.submit(div_graph(1, 0))
        with pytest.raises(RunFailedError):
            await failing
        again = await failing.retry()
        with pytest.raises(RunFailedError) as caught:
            await again
        once_more = await client.runs.retry(again.item_id)  # by id, a retry of a retry
        with pytest.raises(RunFailedError):
            await once_more
        await client.queue.pause()
        try:
            held = await client.runs.submit(add_graph(20, 22))
            await held.cancel()
        finally:
            await client.queue.resume()
        resumed = await (await held.retry()).result(timeout=60)
        done = await client.runs.submit(add_graph(1, 1))
        await done
        with pytest.raises(ValidationError, match="is completed: only failed or canceled"):
            await done.retry()  # known locally: nothing is sent
        with pytest.raises(ValidationError, match="is completed: only failed or canceled"):
            await client.runs.retry(done.item_id)  # the server says so
    ids = [failing.item_id, again.item_id, once_more.item_id]
    assert len(set(ids)) == 3
    assert ids == sorted(ids)
    assert {failing.batch_id, again.batch_id, once_more.batch_id} == {failing.batch_id}
    assert caught.value.error_type == "ZeroDivisionError"
    assert resumed["sum"] == 42
    assert resumed.item_id != held.item_id
    assert resumed.batch_id == held.batch_id
