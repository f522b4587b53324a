"""The session queue, against the real InvokeAI 6.14.2 and the double alike (``peer``).

Raw REST (``client._request``) and the client's event router: what a queue item does, in
which order its events come, what a batch expands to, how failures, cancels and retries look,
and which requests are refused with which 422. Double-only tests at the end cover what only
the double can do on demand (fault switches, image records).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from invokeai_client import AsyncClient, InternalServerError, UnprocessableEntityError
from invokeai_client.types import TERMINAL_STATUSES
from invokeai_client.types.wire_events import (
    BatchEnqueuedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    QueueItemsCanceledEvent,
    QueueItemsRetriedEvent,
    QueueItemStatusChangedEvent,
    ServerEvent,
)

from .conftest import Peer, wait_until
from .helpers import edge, items_ended, outputs, queue_item, wait_items

pytestmark = pytest.mark.anyio



# -- helpers -----------------------------------------------------------------------------


def add_graph(a: int = 3, b: int = 4) -> dict[str, Any]:
    return {
        "nodes": {
            "a": {"id": "a", "type": "integer", "value": a},
            "b": {"id": "b", "type": "integer", "value": b},
            "sum": {"id": "sum", "type": "add"},
        },
        "edges": [edge("a", "value", "sum", "a"), edge("b", "value", "sum", "b")],
    }


def slow_graph(blurs: int = 4) -> dict[str, Any]:
    """A chain that takes a while on the real server (large blurs, cache off)."""
    nodes: dict[str, Any] = {
        "blank": {"id": "blank", "type": "blank_image", "width": 2048, "height": 2048,
                  "is_intermediate": True, "use_cache": False},
    }
    edges = []
    previous = "blank"
    for index in range(blurs):
        name = f"blur{index}"
        nodes[name] = {"id": name, "type": "img_blur", "radius": 40.0, "is_intermediate": True,
                       "use_cache": False}
        edges.append(edge(previous, "image", name, "image"))
        previous = name
    return {"nodes": nodes, "edges": edges}


async def enqueue(client: AsyncClient, batch: dict[str, Any], *, prepend: bool = False) -> Any:
    return await client._request(
        "POST", f"/api/v1/queue/{client.queue_id}/enqueue_batch",
        json={"batch": batch, "prepend": prepend},
    )


class Watch:
    """The raw events of one batch as they arrive (a listener on the client's router), plus
    the bulk events (canceled, retried) that name no batch."""

    def __init__(self, client: AsyncClient, batch_id: str) -> None:
        self.batch_id = batch_id
        self.queue: asyncio.Queue[ServerEvent] = asyncio.Queue()
        self._remove = client._router.add_listener(self._on_event)

    def _on_event(self, event: ServerEvent) -> None:
        if getattr(event, "batch_id", None) == self.batch_id or isinstance(
            event, (QueueItemsCanceledEvent, QueueItemsRetriedEvent)
        ):
            self.queue.put_nowait(event)

    def close(self) -> None:
        self._remove()


async def events_until(sub: Watch, stop: Callable[[list[ServerEvent]], bool],
                       timeout: float = 60) -> list[ServerEvent]:
    """Read a watch until ``stop(events)`` holds."""
    events: list[ServerEvent] = []

    async def read() -> None:
        while not stop(events):
            events.append(await sub.queue.get())

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"events stopped at {[e.event for e in events]}") from None
    return events


def finished(count: int) -> Callable[[list[ServerEvent]], bool]:
    def stop(events: list[ServerEvent]) -> bool:
        ended = {
            e.item_id for e in events
            if isinstance(e, QueueItemStatusChangedEvent) and e.status in TERMINAL_STATUSES
        }
        return len(ended) >= count
    return stop


async def run_one(
    client: AsyncClient,
    graph: dict[str, Any],
    stop: Callable[[list[ServerEvent]], bool] | None = None,
) -> tuple[int, list[ServerEvent]]:
    """Enqueue one item of ``graph`` (its own batch) and read its events until ``stop``
    (default: until it ends); returns its id and the events."""
    batch_id = str(uuid.uuid4())
    sub = Watch(client, batch_id)
    try:
        (item_id,) = (await enqueue(client, {"batch_id": batch_id, "graph": graph}))["item_ids"]
        return item_id, await events_until(sub, stop or finished(1))
    finally:
        sub.close()


def trace(events: list[ServerEvent], item_id: int) -> list[tuple[str, str | None]]:
    """(event, node or status) of one item, in arrival order."""
    steps: list[tuple[str, str | None]] = []
    for event in events:
        if isinstance(event, QueueItemStatusChangedEvent) and event.item_id == item_id:
            steps.append((event.event, event.status))
        elif isinstance(event, InvocationEvent) and event.item_id == item_id:
            steps.append((event.event, event.node_id))
    return steps


# -- enqueue and run ---------------------------------------------------------------------


async def test_add_graph_runs_with_the_server_event_order(client: AsyncClient) -> None:
    batch_id = str(uuid.uuid4())
    sub = Watch(client, batch_id)
    result = await enqueue(client, {"batch_id": batch_id, "graph": add_graph(3, 4),
                                    "origin": "tests", "destination": "queue"})
    assert result["batch"]["batch_id"] == batch_id
    assert result["enqueued"] == result["requested"] == 1
    assert result["batch"]["graph"]["nodes"]["sum"] == {
        "id": "sum", "is_intermediate": False, "use_cache": True, "a": 0, "b": 0, "type": "add"
    }
    (item_id,) = result["item_ids"]
    events = await events_until(sub, finished(1))
    sub.close()

    assert isinstance(events[0], BatchEnqueuedEvent)
    assert events[0].origin == "tests"
    assert trace(events, item_id) == [
        ("queue_item_status_changed", "in_progress"),
        ("invocation_started", "a"), ("invocation_complete", "a"),
        ("invocation_started", "b"), ("invocation_complete", "b"),
        ("invocation_started", "sum"), ("invocation_complete", "sum"),
        ("queue_item_status_changed", "completed"),
    ]
    statuses = [e for e in events if isinstance(e, QueueItemStatusChangedEvent)]
    assert [e.status_sequence for e in statuses] == [1, 2]
    assert statuses[-1].batch_status is not None
    assert statuses[-1].batch_status["completed"] == 1
    assert statuses[-1].destination == "queue"
    complete = [e for e in events if isinstance(e, InvocationCompleteEvent)]
    assert complete[-1].result == {"output_meta": None, "value": 7, "type": "integer_output"}
    assert complete[-1].invocation["a"] == 3  # the prepared node carries its inputs

    item = await queue_item(client, item_id)
    assert item["status"] == "completed"
    assert "error_type" not in item  # nulls are omitted on this route
    assert item["field_values"] == []
    assert outputs(item, "sum") == [{"value": 7, "type": "integer_output"}]
    prepared = item["session"]["source_prepared_mapping"]["sum"][0]
    assert item["session"]["prepared_source_mapping"][prepared] == "sum"
    assert complete[-1].prepared_id == prepared
    assert item["session"]["executed_history"] == ["a", "b", "sum"]


async def test_item_ids_come_back_in_descending_order_and_run_ascending(
    client: AsyncClient,
) -> None:
    batch_id = str(uuid.uuid4())
    sub = Watch(client, batch_id)
    result = await enqueue(client, {"batch_id": batch_id, "graph": add_graph(), "runs": 3})
    ids = result["item_ids"]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    events = await events_until(sub, finished(3))
    sub.close()
    started = [
        e.item_id for e in events
        if isinstance(e, QueueItemStatusChangedEvent) and e.status == "in_progress"
    ]
    assert started == sorted(ids)
    status = await client._request("GET", f"/api/v1/queue/{client.queue_id}/b/{batch_id}/status")
    assert status["completed"] == status["total"] == 3


@pytest.mark.parametrize(
    ("data", "runs", "expected"),
    [
        # one zipped group, runs outermost
        ([[{"node_path": "a", "field_name": "value", "items": [1, 2, 3]},
           {"node_path": "b", "field_name": "value", "items": [10, 20, 30]}]],
         2, [(1, 10), (2, 20), (3, 30), (1, 10), (2, 20), (3, 30)]),
        # two groups: the cartesian product
        ([[{"node_path": "a", "field_name": "value", "items": [1, 2]}],
          [{"node_path": "b", "field_name": "value", "items": [100, 200]}]],
         1, [(1, 100), (1, 200), (2, 100), (2, 200)]),
    ],
    ids=["zipped-runs2", "product"],
)
async def test_batch_data_expands_like_invokeai(
    client: AsyncClient, data: list[Any], runs: int, expected: list[tuple[int, int]]
) -> None:
    result = await enqueue(client, {"graph": add_graph(), "data": data, "runs": runs})
    assert result["requested"] == result["enqueued"] == len(expected)
    ids = sorted(result["item_ids"])
    items = await wait_items(client, ids)
    seen = []
    for item_id in ids:
        item = items[item_id]
        values = {fv["node_path"]: fv["value"] for fv in item["field_values"]}
        seen.append((values["a"], values["b"]))
        assert outputs(item, "sum")[0]["value"] == values["a"] + values["b"]
        assert item["session"]["graph"]["nodes"]["a"]["value"] == values["a"]
    assert seen == expected
    assert len({items[i]["session_id"] for i in ids}) == len(ids)


async def test_iterate_and_collect_expand_per_item(client: AsyncClient) -> None:
    graph = {
        "nodes": {
            "rng": {"id": "rng", "type": "range", "start": 0, "stop": 3, "step": 1},
            "it": {"id": "it", "type": "iterate"},
            "plus": {"id": "plus", "type": "add", "b": 100},
            "col": {"id": "col", "type": "collect"},
        },
        "edges": [edge("rng", "collection", "it", "collection"), edge("it", "item", "plus", "a"),
                  edge("plus", "value", "col", "item")],
    }
    item_id, events = await run_one(client, graph)
    nodes = [node for kind, node in trace(events, item_id) if kind == "invocation_started"]
    assert nodes == ["rng", "it", "it", "it", "plus", "plus", "plus", "col"]
    item = await queue_item(client, item_id)
    mapping = item["session"]["source_prepared_mapping"]
    assert len(mapping["it"]) == len(mapping["plus"]) == 3
    assert len(set(mapping["it"]) | set(mapping["plus"])) == 6  # fresh ids per iteration
    assert outputs(item, "col") == [{"collection": [100, 101, 102], "type": "collect_output"}]
    iterations = sorted((r["index"], r["item"], r["total"]) for r in outputs(item, "it"))
    assert iterations == [(0, 0, 3), (1, 1, 3), (2, 2, 3)]
    started = [e for e in events if isinstance(e, InvocationStartedEvent) and e.node_id == "it"]
    assert all(e.invocation["collection"] == [] for e in started)


async def test_division_by_zero_fails_the_item_status_first(client: AsyncClient) -> None:
    graph = {"nodes": {"d": {"id": "d", "type": "div", "a": 1, "b": 0}}, "edges": []}
    item_id, events = await run_one(
        client, graph, lambda evs: any(isinstance(e, InvocationErrorEvent) for e in evs)
    )
    assert trace(events, item_id) == [
        ("queue_item_status_changed", "in_progress"),
        ("invocation_started", "d"),
        ("queue_item_status_changed", "failed"),
        ("invocation_error", "d"),
    ]
    failed = next(e for e in events
                  if isinstance(e, QueueItemStatusChangedEvent) and e.status == "failed")
    assert failed.error_type == "ZeroDivisionError"
    assert failed.error_message == "division by zero"
    assert "ZeroDivisionError" in (failed.error_traceback or "")
    error = next(e for e in events if isinstance(e, InvocationErrorEvent))
    assert (error.error_type, error.node_id) == ("ZeroDivisionError", "d")
    item = await queue_item(client, item_id)
    assert item["status"] == "failed"
    assert item["error_type"] == "ZeroDivisionError"
    assert list(item["session"]["errors"].values()) == ["ZeroDivisionError: division by zero"]


async def test_an_edge_input_the_node_refuses_fails_it_before_it_starts(
    client: AsyncClient,
) -> None:
    # integer_math checks b != 0 for DIV itself: a literal 0 is refused at enqueue (422), a 0
    # arriving over an edge fails the node as it is prepared (NodeInputError), never run.
    graph = {
        "nodes": {
            "zero": {"id": "zero", "type": "integer", "value": 0},
            "m": {"id": "m", "type": "integer_math", "operation": "DIV", "a": 6, "b": 1},
        },
        "edges": [edge("zero", "value", "m", "b")],
    }
    item_id, events = await run_one(
        client, graph, lambda evs: any(isinstance(e, InvocationErrorEvent) for e in evs)
    )
    assert trace(events, item_id) == [
        ("queue_item_status_changed", "in_progress"),
        ("invocation_started", "zero"),
        ("invocation_complete", "zero"),
        ("queue_item_status_changed", "failed"),
        ("invocation_error", "m"),
    ]
    item = await queue_item(client, item_id)
    (prepared,) = item["session"]["source_prepared_mapping"]["m"]
    message = f"Node {prepared} has invalid incoming input for b"
    assert (item["status"], item["error_type"], item["error_message"]) == (
        "failed", "NodeInputError", message
    )
    assert "NodeInputError" in item["error_traceback"]
    assert item["session"]["errors"] == {prepared: f"NodeInputError: {message}"}
    error = next(e for e in events if isinstance(e, InvocationErrorEvent))
    assert (error.error_type, error.error_message) == ("NodeInputError", message)


async def test_missing_required_input_fails_at_run_time(client: AsyncClient) -> None:
    graph = {"nodes": {"bl": {"id": "bl", "type": "img_blur", "radius": 1.0}}, "edges": []}
    (item_id,) = (await enqueue(client, {"graph": graph}))["item_ids"]
    item = (await wait_items(client, [item_id]))[item_id]
    assert item["status"] == "failed"
    assert item["error_type"] == "MissingInputException"
    assert item["error_message"] == "Node img_blur missing value or connection for field image"


async def test_image_chain_makes_images_with_saving_progress(client: AsyncClient) -> None:
    graph = {
        "nodes": {
            "blank": {"id": "blank", "type": "blank_image", "width": 64, "height": 48,
                      "color": {"r": 255, "g": 128, "b": 0, "a": 255}, "is_intermediate": True,
                      "use_cache": False},
            "resize": {"id": "resize", "type": "img_resize", "width": 32, "height": 24,
                       "is_intermediate": True, "use_cache": False},
            "save": {"id": "save", "type": "save_image", "is_intermediate": False},
        },
        "edges": [edge("blank", "image", "resize", "image"), edge("resize", "image", "save",
                                                                  "image")],
    }
    item_id, events = await run_one(client, graph)
    steps = trace(events, item_id)
    assert steps[1:4] == [("invocation_started", "blank"), ("invocation_progress", "blank"),
                          ("invocation_complete", "blank")]
    progress = [e for e in events if isinstance(e, InvocationProgressEvent)]
    assert [p.message for p in progress] == ["Saving image"] * 3
    assert all(p.percentage is None for p in progress)
    item = await queue_item(client, item_id)
    (saved,) = outputs(item, "save")
    assert (saved["width"], saved["height"], saved["type"]) == (32, 24, "image_output")
    assert saved["image"]["image_name"].endswith(".png")
    assert outputs(item, "blank")[0]["image"] != saved["image"]


async def test_image_nodes_make_images_of_the_right_size(client: AsyncClient) -> None:
    def image_node(node_id: str, node_type: str, **fields: Any) -> dict[str, Any]:
        return {"id": node_id, "type": node_type, "is_intermediate": True, "use_cache": False,
                **fields}

    nodes = [
        image_node("base", "blank_image", width=48, height=48, mode="RGBA",
                   color={"r": 0, "g": 0, "b": 255, "a": 255}),
        image_node("top", "blank_image", width=16, height=16),
        image_node("paste", "img_paste", x=8, y=8),
        image_node("crop", "img_crop", x=4, y=4, width=32, height=32),
        image_node("scale", "img_scale", scale_factor=2.0, resample_mode="nearest"),
        image_node("conv", "img_conv", mode="L"),
        image_node("chan", "img_chan", channel="R"),
        image_node("mul", "img_mul"),
        image_node("lerp", "img_lerp", min=10, max=200),
        image_node("ilerp", "img_ilerp", min=10, max=200),
        image_node("noise", "img_noise", seed=1, amount=0.2, size=2),
        image_node("resize", "img_resize", width=20, height=10),
        image_node("pass", "image"),
    ]
    edges = [
        edge("base", "image", "paste", "base_image"), edge("top", "image", "paste", "image"),
        edge("paste", "image", "crop", "image"), edge("crop", "image", "scale", "image"),
        edge("scale", "image", "conv", "image"), edge("scale", "image", "chan", "image"),
        edge("conv", "image", "mul", "image1"), edge("chan", "image", "mul", "image2"),
        edge("mul", "image", "lerp", "image"), edge("lerp", "image", "ilerp", "image"),
        edge("ilerp", "image", "noise", "image"), edge("noise", "image", "resize", "image"),
        edge("resize", "image", "pass", "image"),
    ]
    graph = {"nodes": {n["id"]: n for n in nodes}, "edges": edges}
    (item_id,) = (await enqueue(client, {"graph": graph}))["item_ids"]
    item = (await wait_items(client, [item_id]))[item_id]
    assert item["status"] == "completed", item.get("error_message")
    sizes = {node: (outputs(item, node)[0]["width"], outputs(item, node)[0]["height"])
             for node in graph["nodes"]}
    assert sizes == {
        "base": (48, 48), "top": (16, 16), "paste": (48, 48), "crop": (32, 32),
        "scale": (64, 64), "conv": (64, 64), "chan": (64, 64), "mul": (64, 64),
        "lerp": (64, 64), "ilerp": (64, 64), "noise": (64, 64), "resize": (20, 10),
        "pass": (20, 10),
    }
    assert outputs(item, "pass")[0]["image"] == outputs(item, "resize")[0]["image"]


async def test_the_invocation_cache_reuses_outputs_of_equal_nodes(client: AsyncClient) -> None:
    import random

    color = {"r": random.randrange(256), "g": random.randrange(256), "b": random.randrange(256),
             "a": 255}
    graph = {"nodes": {"blank": {"id": "blank", "type": "blank_image", "width": 24,
                                 "height": 16, "color": color}}, "edges": []}
    runs = []
    for _ in range(2):
        item_id, events = await run_one(client, graph)
        runs.append((await queue_item(client, item_id), events))
    (first, first_events), (second, second_events) = runs
    assert outputs(first, "blank") == outputs(second, "blank")  # the very same image
    assert any(isinstance(e, InvocationProgressEvent) for e in first_events)
    assert not any(isinstance(e, InvocationProgressEvent) for e in second_events)
    assert [kind for kind, _ in trace(second_events, second["item_id"])] == [
        "queue_item_status_changed", "invocation_started", "invocation_complete",
        "queue_item_status_changed"]
    status = await client._request("GET", "/api/v1/app/invocation_cache/status")
    assert status["enabled"] is True
    assert status["hits"] >= 1


async def test_prepend_puts_the_batch_in_front(client: AsyncClient) -> None:
    first = await enqueue(client, {"graph": add_graph()})
    front = await enqueue(client, {"graph": add_graph()}, prepend=True)
    assert front["priority"] >= 1
    assert front["priority"] > first["priority"] or first["priority"] >= 1
    await wait_items(client, first["item_ids"] + front["item_ids"])


# -- cancel, retry -----------------------------------------------------------------------


async def test_cancel_in_progress_and_pending_items(peer: Peer, client: AsyncClient) -> None:
    if peer.double is not None:
        peer.double.queue.faults.node_delay = 0.1
    batch_id = str(uuid.uuid4())
    sub = Watch(client, batch_id)
    result = await enqueue(client, {"batch_id": batch_id, "graph": slow_graph(), "runs": 3})
    first, second, third = sorted(result["item_ids"])
    q = f"/api/v1/queue/{client.queue_id}"
    await events_until(sub, lambda evs: any(
        isinstance(e, InvocationStartedEvent) and e.item_id == first for e in evs))

    running = await client._request("PUT", f"{q}/i/{first}/cancel")
    assert running["status"] == "canceled"
    pending = await client._request("PUT", f"{q}/i/{third}/cancel")
    assert pending["status"] == "canceled"
    assert pending["started_at"] is None

    events = await events_until(sub, finished(3), timeout=120)
    sub.close()
    statuses = {
        (e.item_id, e.status) for e in events if isinstance(e, QueueItemStatusChangedEvent)
    }
    assert (first, "canceled") in statuses
    assert (third, "canceled") in statuses
    assert (second, "completed") in statuses
    assert not any(item_id == third and status == "in_progress" for item_id, status in statuses)
    items = await wait_items(client, [first, second, third], timeout=120)
    assert [items[i]["status"] for i in (first, second, third)] == [
        "canceled", "completed", "canceled"]
    again = await client._request("PUT", f"{q}/i/{first}/cancel")  # finished: a no-op
    assert again["status"] == "canceled"


async def test_cancel_by_batch_ids_sends_one_bulk_event(client: AsyncClient) -> None:
    q = f"/api/v1/queue/{client.queue_id}"
    await client._request("PUT", f"{q}/processor/pause")
    try:
        batch_id = str(uuid.uuid4())
        sub = Watch(client, batch_id)
        result = await enqueue(client, {"batch_id": batch_id, "graph": add_graph(), "runs": 3})
        answer = await client._request("PUT", f"{q}/cancel_by_batch_ids",
                                       json={"batch_ids": [batch_id]})
        assert answer == {"canceled": 3}
        events = await events_until(sub, lambda evs: any(
            isinstance(e, QueueItemsCanceledEvent) for e in evs))
        sub.close()
        canceled = [e for e in events if isinstance(e, QueueItemsCanceledEvent)]
        assert sorted(canceled[-1].canceled_item_ids) == sorted(result["item_ids"])
        # pending items canceled in bulk get no status event of their own
        assert not any(isinstance(e, QueueItemStatusChangedEvent) for e in events)
        status = await client._request("GET", f"{q}/b/{batch_id}/status")
        assert status["canceled"] == 3
        assert status["pending"] == 0
    finally:
        await client._request("PUT", f"{q}/processor/resume")


async def test_retry_makes_a_new_item_of_the_same_batch(client: AsyncClient) -> None:
    q = f"/api/v1/queue/{client.queue_id}"
    batch_id = str(uuid.uuid4())
    graph = {"nodes": {"d": {"id": "d", "type": "div", "a": 1, "b": 0}}, "edges": []}
    sub = Watch(client, batch_id)
    (old,) = (await enqueue(client, {"batch_id": batch_id, "graph": graph}))["item_ids"]
    await events_until(sub, finished(1))
    answer = await client._request("PUT", f"{q}/retry_items_by_id", json=[old])
    assert answer == {"queue_id": client.queue_id, "retried_item_ids": [old]}
    events = await events_until(sub, lambda evs: any(
        isinstance(e, QueueItemStatusChangedEvent) and e.status == "failed" for e in evs))
    sub.close()
    retried = [e for e in events if isinstance(e, QueueItemsRetriedEvent)]
    assert retried
    assert retried[-1].retried_item_ids == [old]
    assert not any(isinstance(e, BatchEnqueuedEvent) for e in events)
    new = next(e.item_id for e in events if isinstance(e, QueueItemStatusChangedEvent))
    assert new > old
    item = await queue_item(client, new)
    assert item["batch_id"] == batch_id
    assert item["retried_from_item_id"] == old
    assert (await queue_item(client, old))["status"] == "failed"  # the original stays as it was


# -- refused requests --------------------------------------------------------------------


async def refused(client: AsyncClient, batch: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(UnprocessableEntityError) as caught:
        await enqueue(client, batch)
    detail: list[dict[str, Any]] = caught.value.detail
    return detail


async def test_unknown_node_type_is_a_tagged_union_422(client: AsyncClient) -> None:
    (err,) = await refused(client, {"graph": {"nodes": {"x": {"id": "x", "type": "no_such"}}}})
    assert err["type"] == "union_tag_invalid"
    assert err["loc"] == ["body", "batch", "graph", "nodes", "x"]
    assert "'add'" in err["msg"]
    assert err["ctx"]["tag"] == "no_such"


@pytest.mark.parametrize(
    ("batch", "loc", "message"),
    [
        ({"graph": {"nodes": {"k1": {"id": "other", "type": "integer", "value": 1}}}},
         ["body", "batch", "graph"], "Value error, Node ids must match, got k1 and other"),
        ({"graph": {"nodes": {"a": {"id": "a", "type": "integer"}},
                    "edges": [edge("a", "value", "ghost", "a")]}},
         ["body", "batch", "graph"],
         "Value error, Edge destination node ghost does not exist in the graph"),
        ({"graph": {"nodes": {"a": {"id": "a", "type": "integer"}, "s": {"id": "s", "type": "add"}},
                    "edges": [edge("a", "value", "s", "nope")]}},
         ["body", "batch", "graph"],
         "Value error, Edge destination field nope does not exist in node s"),
        ({"graph": {"nodes": {"a": {"id": "a", "type": "integer"},
                              "bl": {"id": "bl", "type": "img_blur"}},
                    "edges": [edge("a", "value", "bl", "image")]}},
         ["body", "batch", "graph"],
         "Value error, Edge source and target types do not match (a.value -> bl.image)"),
        ({"graph": {"nodes": {"p": {"id": "p", "type": "add"}, "q": {"id": "q", "type": "add"}},
                    "edges": [edge("p", "value", "q", "a"), edge("q", "value", "p", "a")]}},
         ["body", "batch", "graph"], "Value error, Graph contains cycles"),
        ({"graph": add_graph(), "data": [[
            {"node_path": "a", "field_name": "value", "items": [1, 2]},
            {"node_path": "b", "field_name": "value", "items": [1]}]]},
         ["body", "batch", "data"],
         "Value error, Zipped batch items must all have the same length"),
        ({"graph": add_graph(), "data": [[{"node_path": "zzz", "field_name": "value",
                                           "items": [1]}]]},
         ["body", "batch"], "Value error, Node zzz not found in graph"),
        ({"graph": add_graph(), "data": [
            [{"node_path": "a", "field_name": "value", "items": [1]}],
            [{"node_path": "a", "field_name": "value", "items": [2]}]]},
         ["body", "batch", "data"],
         "Value error, Each batch data must have unique node_id and field_name"),
        ({"graph": add_graph(), "data": [[
            {"node_path": "a", "field_name": "value", "items": [1, "2"]}]]},
         ["body", "batch", "data"], "Value error, All items in a batch must have the same type"),
        ({"graph": {"nodes": {"m": {"id": "m", "type": "integer_math", "operation": "DIV",
                                    "a": 1, "b": 0}}}},
         ["body", "batch", "graph", "nodes", "m", "integer_math", "b"],
         "Value error, Cannot divide by zero"),
        ({"graph": {"nodes": {"x": {"id": "x", "type": "integer", "value": "abc"}}}},
         ["body", "batch", "graph", "nodes", "x", "integer", "value"],
         "Input should be a valid integer, unable to parse string as an integer"),
        ({"graph": add_graph(), "runs": 0},
         ["body", "batch", "runs"], "Input should be greater than or equal to 1"),
    ],
    ids=["id-mismatch", "edge-node", "edge-field", "edge-types", "cycle", "zip-length",
         "node-path", "duplicate-field", "mixed-types", "field-validator", "field-type", "runs"],
)
async def test_invalid_batches_get_the_server_422(
    client: AsyncClient, batch: dict[str, Any], loc: list[Any], message: str
) -> None:
    (err,) = await refused(client, batch)
    assert err["loc"] == loc
    assert err["msg"] == message


async def test_missing_batch_and_bad_json_are_422(client: AsyncClient) -> None:
    q = f"/api/v1/queue/{client.queue_id}"
    with pytest.raises(UnprocessableEntityError) as caught:
        await client._request("POST", f"{q}/enqueue_batch", json={"graph": add_graph()})
    assert caught.value.detail == [
        {"type": "missing", "loc": ["body", "batch"], "msg": "Field required", "input": None}
    ]
    with pytest.raises(UnprocessableEntityError) as caught:
        await client._request("POST", f"{q}/enqueue_batch", data=b"{",
                              headers={"Content-Type": "application/json"})
    assert caught.value.detail[0]["type"] == "json_invalid"


async def test_unknown_item_is_404_with_the_server_message(client: AsyncClient) -> None:
    from invokeai_client import NotFoundError

    with pytest.raises(NotFoundError) as caught:
        await queue_item(client, 999_999_999)
    assert caught.value.detail == (
        f"Queue item with id 999999999 not found in queue {client.queue_id}"
    )


# -- the server's bad-batch-data stall ---------------------------------------------------


async def test_wrong_typed_batch_data_stalls_the_queue_until_canceled(peer: Peer) -> None:
    async with peer.client(max_retries=0) as client:
        q = f"/api/v1/queue/{client.queue_id}"
        poison = await enqueue(client, {"graph": add_graph(), "data": [[
            {"node_path": "a", "field_name": "value", "items": ["x"]}]]})
        bad_batch = poison["batch"]["batch_id"]
        try:
            (bad,) = poison["item_ids"]
            (healthy,) = (await enqueue(client, {"graph": add_graph()}))["item_ids"]
            await asyncio.sleep(1.0)  # give the processor the chance it would need
            status = await client._request("GET", f"{q}/status")
            assert status["processor"]["is_processing"] is False
            assert (await queue_item(client, healthy))["status"] == "pending"
            with pytest.raises(InternalServerError) as caught:
                await queue_item(client, bad)
            assert "validation error for GraphExecutionState" in str(caught.value.detail)
            await client._request("PUT", f"{q}/cancel_by_batch_ids",
                                  json={"batch_ids": [bad_batch]})
            assert (await wait_items(client, [healthy]))[healthy]["status"] == "completed"
        finally:
            await client._request("PUT", f"{q}/cancel_by_batch_ids",
                                  json={"batch_ids": [bad_batch]})
            await client._request("PUT", f"{q}/prune")


# -- more queue routes -------------------------------------------------------------------


async def test_listing_routes_agree_on_a_batch(client: AsyncClient) -> None:
    q = f"/api/v1/queue/{client.queue_id}"
    destination = f"dest-{uuid.uuid4()}"
    result = await enqueue(client, {"graph": add_graph(), "runs": 2, "destination": destination})
    ids = sorted(result["item_ids"])
    await wait_items(client, ids)

    listed = await client._request("GET", f"{q}/item_ids")
    assert set(ids) <= set(listed["item_ids"])
    assert listed["total_count"] == len(listed["item_ids"])
    ascending = await client._request("GET", f"{q}/item_ids", params={"order_dir": "ASC"})
    assert ascending["item_ids"].index(ids[0]) < ascending["item_ids"].index(ids[1])

    items = await client._request("POST", f"{q}/items_by_ids",
                                  json={"item_ids": [ids[1], 999_999_999, ids[0]]})
    assert [i["item_id"] for i in items] == [ids[1], ids[0]]  # request order, missing skipped
    assert items[0]["error_type"] is None  # nulls are sent on this route
    summaries = await client._request("POST", f"{q}/item_summaries_by_ids",
                                      json={"item_ids": ids})
    assert [s["item_id"] for s in summaries] == ids
    assert "session" not in summaries[0]
    assert summaries[0]["destination"] == destination

    everything = await client._request("GET", f"{q}/list_all",
                                       params={"destination": destination})
    assert [i["item_id"] for i in everything] == ids
    counts = await client._request("GET", f"{q}/counts_by_destination",
                                   params={"destination": destination})
    assert (counts["completed"], counts["total"]) == (2, 2)
    with pytest.raises(UnprocessableEntityError):
        await client._request("GET", f"{q}/counts_by_destination")


async def test_pause_holds_items_and_cancel_by_destination_clears_them(
    client: AsyncClient,
) -> None:
    q = f"/api/v1/queue/{client.queue_id}"
    destination = f"dest-{uuid.uuid4()}"
    paused = await client._request("PUT", f"{q}/processor/pause")
    assert paused == {"is_started": False, "is_processing": False}
    try:
        result = await enqueue(client, {"graph": add_graph(), "runs": 2,
                                        "destination": destination})
        status = await client._request("GET", f"{q}/status")
        assert status["processor"]["is_started"] is False
        assert status["queue"]["pending"] >= 2
        nxt = await client._request("GET", f"{q}/next")
        assert nxt is not None
        assert nxt["status"] == "pending"
        answer = await client._request("PUT", f"{q}/cancel_by_destination",
                                       params={"destination": destination})
        assert answer == {"canceled": 2}
        for item_id in result["item_ids"]:
            assert (await queue_item(client, item_id))["status"] == "canceled"
    finally:
        resumed = await client._request("PUT", f"{q}/processor/resume")
    assert resumed["is_started"] is True


async def test_delete_prune_and_clear(client: AsyncClient) -> None:
    from invokeai_client import NotFoundError

    q = f"/api/v1/queue/{client.queue_id}"
    first = await enqueue(client, {"graph": add_graph()})
    (item_id,) = first["item_ids"]
    await wait_items(client, [item_id])
    assert await client._request("DELETE", f"{q}/i/{item_id}") is None
    with pytest.raises(NotFoundError):
        await queue_item(client, item_id)

    second = await enqueue(client, {"graph": add_graph()})
    await wait_items(client, second["item_ids"])
    pruned = await client._request("PUT", f"{q}/prune")
    assert pruned["deleted"] >= 1
    with pytest.raises(NotFoundError):
        await queue_item(client, second["item_ids"][0])

    await client._request("PUT", f"{q}/processor/pause")
    try:
        third = await enqueue(client, {"graph": add_graph(), "runs": 2})
        cleared = await client._request("PUT", f"{q}/clear")
        assert cleared["deleted"] >= 2
        status = await client._request("GET", f"{q}/status")
        assert status["queue"]["total"] == 0
        with pytest.raises(NotFoundError):
            await queue_item(client, third["item_ids"][0])
    finally:
        await client._request("PUT", f"{q}/processor/resume")


async def test_cancel_all_except_current_keeps_the_running_item(
    peer: Peer, client: AsyncClient
) -> None:
    if peer.double is not None:
        peer.double.queue.faults.node_delay = 0.1
    q = f"/api/v1/queue/{client.queue_id}"
    batch_id = str(uuid.uuid4())
    sub = Watch(client, batch_id)
    result = await enqueue(client, {"batch_id": batch_id, "graph": slow_graph(2), "runs": 3})
    first, *rest = sorted(result["item_ids"])
    await events_until(sub, lambda evs: any(
        isinstance(e, InvocationStartedEvent) and e.item_id == first for e in evs))
    current = await client._request("GET", f"{q}/current")
    assert current["item_id"] == first
    answer = await client._request("PUT", f"{q}/cancel_all_except_current")
    assert answer["canceled"] >= 2
    items = await wait_items(client, [first, *rest], timeout=120)
    sub.close()
    assert items[first]["status"] == "completed"
    assert [items[i]["status"] for i in rest] == ["canceled", "canceled"]


# -- multi-user --------------------------------------------------------------------------


async def test_other_users_see_redacted_items_and_cannot_cancel_them(
    multiuser_peer: Peer,
) -> None:
    from invokeai_client import PermissionDeniedError

    from .conftest import ADMIN, USER

    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as admin, \
            multiuser_peer.client(email=USER[0], password=USER[1]) as user:
        q = f"/api/v1/queue/{admin.queue_id}"
        await admin._request("PUT", f"{q}/processor/pause")
        try:
            batch_id = str(uuid.uuid4())
            seen_by_user = Watch(user, "redacted")
            (item_id,) = (await enqueue(admin, {"batch_id": batch_id,
                                                "graph": add_graph()}))["item_ids"]
            as_user = await queue_item(user, item_id)
            assert as_user["batch_id"] == "redacted"
            assert as_user["user_id"] == "redacted"
            assert "field_values" not in as_user
            assert (await queue_item(admin, item_id))["batch_id"] == batch_id
            with pytest.raises(PermissionDeniedError):
                await user._request("PUT", f"{q}/i/{item_id}/cancel")
            with pytest.raises(PermissionDeniedError):
                await user._request("PUT", f"{q}/processor/resume")
            await admin._request("PUT", f"{q}/processor/resume")
            await wait_items(admin, [item_id])
            companions = await events_until(seen_by_user, lambda evs: any(
                isinstance(e, QueueItemStatusChangedEvent) and e.status == "completed"
                for e in evs))
            seen_by_user.close()
            assert all(e.user_id == "redacted" for e in companions if hasattr(e, "user_id"))
            assert not any(isinstance(e, InvocationEvent) for e in companions)
        finally:
            await admin._request("PUT", f"{q}/processor/resume")


# -- fault switches (the double only) ----------------------------------------------------


async def test_duplicated_events_arrive_twice_each(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.faults.duplicate_events = True
    async with double.client() as client:
        batch_id = str(uuid.uuid4())
        sub = Watch(client, batch_id)
        (item_id,) = (await enqueue(client, {"batch_id": batch_id,
                                             "graph": add_graph()}))["item_ids"]
        events = await events_until(sub, lambda evs: sum(
            isinstance(e, QueueItemStatusChangedEvent) and e.status == "completed"
            for e in evs) == 2)
        sub.close()
    steps = trace(events, item_id)
    assert steps[::2] == steps[1::2]  # every event right after its twin
    assert len(steps) == 16


async def test_silent_events_leave_only_rest(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.faults.silent_events = True
    async with double.client() as client:
        batch_id = str(uuid.uuid4())
        sub = Watch(client, batch_id)
        (item_id,) = (await enqueue(client, {"batch_id": batch_id,
                                             "graph": add_graph()}))["item_ids"]
        item = (await wait_items(client, [item_id]))[item_id]
        assert outputs(item, "sum")[0]["value"] == 7
        assert sub.queue.empty()
        sub.close()


async def test_late_events_keep_their_order(double: Peer) -> None:
    assert double.double is not None
    queue = double.double.queue
    queue.faults.event_delay = 3600
    async with double.client() as client:
        batch_id = str(uuid.uuid4())
        sub = Watch(client, batch_id)
        (item_id,) = (await enqueue(client, {"batch_id": batch_id,
                                             "graph": add_graph()}))["item_ids"]
        await wait_items(client, [item_id])
        assert sub.queue.empty()  # done on the server, nothing heard yet
        assert await queue.flush_late_events() == 9
        events = await events_until(sub, finished(1))
        sub.close()
    assert isinstance(events[0], BatchEnqueuedEvent)
    assert trace(events, item_id)[-1] == ("queue_item_status_changed", "completed")


async def test_shuffled_events_are_the_same_events_out_of_order(double: Peer) -> None:
    assert double.double is not None
    faults = double.double.queue.faults
    async with double.client() as client:
        in_order = await _run_and_trace(client)
        faults.shuffle_item_events = True
        faults.seed = 7
        shuffled = await _run_and_trace(client, lambda evs: len(evs) == 9)  # + batch_enqueued
    assert sorted(shuffled, key=str) == sorted(in_order, key=str)
    assert shuffled != in_order


async def _run_and_trace(
    client: AsyncClient, stop: Callable[[list[ServerEvent]], bool] | None = None
) -> list[tuple[str, str | None]]:
    item_id, events = await run_one(client, add_graph(), stop)
    return trace(events, item_id)


async def test_sockets_dropped_after_n_events_reconnect(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.faults.drop_sockets_after_events = 5
    async with double.client() as client:
        result = await enqueue(client, {"graph": add_graph(), "runs": 3})
        items = await wait_items(client, result["item_ids"])
        assert all(item["status"] == "completed" for item in items.values())
        await wait_until(lambda: reconnected(client, 2))
    assert len(double.double.subscribe_log) >= 2


async def test_sockets_dropped_every_interval_reconnect(double: Peer) -> None:
    assert double.double is not None
    async with double.client() as client:
        double.double.queue.faults.drop_sockets_every = 0.2
        # Connected for at most 0.2 s at a time: count the connects, don't catch one open.
        await wait_until(lambda: client._events.connect_count >= 3, 120)
        double.double.queue.faults.drop_sockets_every = None
        await wait_until(lambda: client.is_connected)  # and it stays back once it may


def reconnected(client: AsyncClient, times: int) -> bool:
    return client._events.connect_count >= times and client.is_connected


async def test_lost_enqueue_answer_still_enqueued(double: Peer) -> None:
    from invokeai_client import ConnectionError as ClientConnectionError

    assert double.double is not None
    faults = double.double.queue.faults
    async with double.client(max_retries=0) as client:
        q = f"/api/v1/queue/{client.queue_id}"
        for status, error_class in ((502, InternalServerError), (None, ClientConnectionError)):
            faults.lose_enqueue_responses = 1
            faults.lost_enqueue_status = status
            batch_id = str(uuid.uuid4())
            with pytest.raises(error_class):
                await enqueue(client, {"batch_id": batch_id, "graph": add_graph(), "runs": 2})
            assert double.double.count("POST", "/api/v1/queue/*/enqueue_batch") == (
                1 if status else 2)  # never retried
            status_of_batch = await client._request("GET", f"{q}/b/{batch_id}/status")
            assert status_of_batch["total"] == 2  # the server has the batch all the same


async def test_events_can_overtake_the_enqueue_answer(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.faults.enqueue_response_until = items_ended(double.double.queue)
    double.double.queue.faults.enqueue_response_delay = 0.5  # their events reach the client
    async with double.client() as client:
        batch_id = str(uuid.uuid4())
        sub = Watch(client, batch_id)
        await enqueue(client, {"batch_id": batch_id, "graph": add_graph()})
        heard = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
        sub.close()
    assert finished(1)(heard)


async def test_a_stalled_processor_looks_started_but_runs_nothing(double: Peer) -> None:
    assert double.double is not None
    queue = double.double.queue
    queue.faults.stall_processor = True
    async with double.client() as client:
        q = f"/api/v1/queue/{client.queue_id}"
        (item_id,) = (await enqueue(client, {"graph": add_graph()}))["item_ids"]
        await asyncio.sleep(0.2)
        status = await client._request("GET", f"{q}/status")
        assert status["processor"] == {"is_started": True, "is_processing": False}
        assert (await queue_item(client, item_id))["status"] == "pending"
        queue.faults.stall_processor = False
        queue.wake()
        assert (await wait_items(client, [item_id]))[item_id]["status"] == "completed"


async def test_canceled_node_completes_unless_it_reports_progress(double: Peer) -> None:
    assert double.double is not None
    faults = double.double.queue.faults
    faults.node_delays = {"add": 0.3}
    double.double.queue.cache.enabled = False  # the second round must run its nodes again
    async with double.client() as client:
        q = f"/api/v1/queue/{client.queue_id}"
        for steps, completes in ((0, True), (5, False)):
            faults.progress_steps = steps
            batch_id = str(uuid.uuid4())
            sub = Watch(client, batch_id)
            (item_id,) = (await enqueue(client, {"batch_id": batch_id,
                                                 "graph": add_graph()}))["item_ids"]
            before = await events_until(sub, lambda evs: any(
                isinstance(e, InvocationStartedEvent) and e.node_id == "sum" for e in evs))
            await client._request("PUT", f"{q}/i/{item_id}/cancel")
            if completes:
                events = await events_until(sub, lambda evs: any(
                    isinstance(e, InvocationCompleteEvent) and e.node_id == "sum" for e in evs))
                assert trace(events, item_id)[-2:] == [
                    ("queue_item_status_changed", "canceled"), ("invocation_complete", "sum")]
            else:
                events = await events_until(sub, finished(1))
                await wait_until(lambda: idle(double), 60)
                events += [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
                assert trace(events, item_id)[-1] == ("queue_item_status_changed", "canceled")
                assert not any(isinstance(e, InvocationCompleteEvent) and e.node_id == "sum"
                               for e in events)
                progress = [e for e in before if isinstance(e, InvocationProgressEvent)]
                assert [p.percentage for p in progress if p.node_id == "a"] == [
                    0.2, 0.4, 0.6, 0.8, 1.0]
            sub.close()


def idle(double: Peer) -> bool:
    assert double.double is not None
    return double.double.queue._running is None


async def test_a_full_queue_cuts_the_batch(double: Peer) -> None:
    assert double.double is not None
    double.double.queue.max_queue_size = 5
    double.double.queue.paused = True
    async with double.client() as client:
        result = await enqueue(client, {"graph": add_graph(), "runs": 8})
    assert (result["requested"], result["enqueued"], len(result["item_ids"])) == (8, 5, 5)


async def test_saved_images_are_real_pngs_in_the_shared_store(double: Peer) -> None:
    assert double.double is not None
    graph = {
        "nodes": {
            "blank": {"id": "blank", "type": "blank_image", "width": 20, "height": 10,
                      "color": {"r": 255, "g": 0, "b": 0, "a": 255}, "is_intermediate": True},
            "save": {"id": "save", "type": "save_image", "board": {"board_id": "b1"}},
        },
        "edges": [edge("blank", "image", "save", "image")],
    }
    async with double.client() as client:
        (item_id,) = (await enqueue(client, {"graph": graph}))["item_ids"]
        item = (await wait_items(client, [item_id]))[item_id]
    name = outputs(item, "save")[0]["image"]["image_name"]
    record = double.double.images[name]
    assert record.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (record.width, record.height, record.is_intermediate) == (20, 10, False)
    assert record.board_id == "b1"
    assert record.session_id == item["session_id"]
    assert record.node_id == item["session"]["source_prepared_mapping"]["save"][0]
    blank = double.double.images[outputs(item, "blank")[0]["image"]["image_name"]]
    assert blank.is_intermediate is True


def test_the_doubles_nodes_match_the_servers_schemas() -> None:
    """Every node the double runs declares what InvokeAI 6.14.2's OpenAPI says: class name,
    field order, defaults, cache default, output type and output fields."""
    import json

    from invokeai_client.testing.double.nodes import NODE_SPECS, REAL_NODE_TYPES

    from .conftest import SHARED

    path = SHARED / "invokeai" / "openapi-6.14.2.json"
    if not path.exists():
        pytest.skip("the captured OpenAPI document is not available")
    schemas = json.loads(path.read_text())["components"]["schemas"]
    outputs = schemas["InvocationOutputMap"]["properties"]
    assert set(outputs) == REAL_NODE_TYPES
    for node_type, spec in NODE_SPECS.items():
        schema = schemas[spec.class_name]
        properties = schema["properties"]
        assert properties["type"]["default"] == node_type
        expected_order = [name for name in properties if name != "type"]
        ours = [f.name for f in spec.mixin_fields] + ["id", "is_intermediate", "use_cache"] + [
            f.name for f in spec.fields]
        assert ours == expected_order, node_type
        assert properties["use_cache"]["default"] == spec.use_cache, node_type
        for field_spec in spec.all_fields:
            declared = properties[field_spec.name]
            if "default" in declared:
                assert declared["default"] == field_spec.default, (node_type, field_spec.name)
            if field_spec.choices:
                assert tuple(declared["enum"]) == field_spec.choices, (node_type, field_spec.name)
            assert declared.get("orig_required", False) == field_spec.required, (
                node_type, field_spec.name)
        output_schema = schemas[outputs[node_type]["$ref"].split("/")[-1]]
        assert output_schema["properties"]["type"]["default"] == spec.output_type
        assert [k for k in output_schema["properties"] if k != "type"] == list(spec.outputs)


async def test_users_take_turns_in_multi_user_mode(multiuser_peer: Peer) -> None:
    from .conftest import ADMIN, USER

    async with multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as admin, \
            multiuser_peer.client(email=USER[0], password=USER[1]) as user:
        q = f"/api/v1/queue/{admin.queue_id}"
        await admin._request("PUT", f"{q}/processor/pause")
        try:
            admin_batch, user_batch = str(uuid.uuid4()), str(uuid.uuid4())
            started: list[str] = []
            remove = admin._router.add_listener(
                lambda e: started.append(e.batch_id)
                if isinstance(e, QueueItemStatusChangedEvent) and e.status == "in_progress"
                and e.batch_id in (admin_batch, user_batch) else None
            )
            first = await enqueue(admin, {"batch_id": admin_batch, "graph": add_graph(),
                                          "runs": 3})
            second = await enqueue(user, {"batch_id": user_batch, "graph": add_graph(),
                                          "runs": 3})
            await admin._request("PUT", f"{q}/processor/resume")
            await wait_items(admin, first["item_ids"] + second["item_ids"])
            await wait_until(lambda: len(started) == 6, 30)
            remove()
        finally:
            await admin._request("PUT", f"{q}/processor/resume")
    # whoever goes first, the two users alternate
    assert all(a != b for a, b in itertools.pairwise(started)), started
