"""The run state machine without I/O: frames and REST snapshots in, events and a result out.

No client, socket or server: each story feeds one item's frames (through the router's repeat
filter, as the router would) and REST snapshots to an
:class:`~invokeai_client.runs._state.ItemState`, and checks the events its readers get, the
REST reads it asks for and the result it settles with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from invokeai_client._router import ItemRoute
from invokeai_client.runs._shape import BatchShape
from invokeai_client.runs._state import ItemState
from invokeai_client.runs.events import (
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    RunEvent,
    StatusChanged,
)
from invokeai_client.runs.results import WorkflowResult
from invokeai_client.types.queue import SessionQueueItem

BATCH = "b-1"
ITEM = 7


# -- frames as the socket sends them -----------------------------------------------------------


def status(value: str, seq: int | None = None, **error: str) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {"item_id": ITEM, "batch_id": BATCH, "status": value, **error}
    if seq is not None:
        data["status_sequence"] = seq
    return "queue_item_status_changed", data


def _node(name: str, node: str, prepared: str, **more: Any) -> tuple[str, dict[str, Any]]:
    invocation = {"id": prepared, "type": "add"}
    return name, {
        "item_id": ITEM, "batch_id": BATCH, "invocation_source_id": node,
        "invocation": invocation, "session_id": "s-1", **more,
    }


def started(node: str, prepared: str = "") -> tuple[str, dict[str, Any]]:
    return _node("invocation_started", node, prepared or f"p-{node}")


def complete(node: str, value: int, prepared: str = "") -> tuple[str, dict[str, Any]]:
    result = {"type": "integer_output", "value": value}
    return _node("invocation_complete", node, prepared or f"p-{node}", result=result)


def error(node: str, kind: str = "ValueError") -> tuple[str, dict[str, Any]]:
    return _node("invocation_error", node, f"p-{node}", error_type=kind,
                 error_message="bad", error_traceback="tb")


def progress(node: str, percentage: float) -> tuple[str, dict[str, Any]]:
    return _node("invocation_progress", node, f"p-{node}", percentage=percentage, message="")


def canceled_in_bulk() -> tuple[str, dict[str, Any]]:
    return "queue_items_canceled", {"canceled_item_ids": [ITEM]}


# -- REST snapshots ----------------------------------------------------------------------------


def rest_item(value: str, outputs: dict[str, int] | None = None, **more: Any) -> SessionQueueItem:
    outputs = outputs or {}
    session = {
        "id": "s-1",
        "results": {f"p-{n}": {"type": "integer_output", "value": v} for n, v in outputs.items()},
        "prepared_source_mapping": {f"p-{n}": n for n in outputs},
        "source_prepared_mapping": {n: [f"p-{n}"] for n in outputs},
        "execution_graph": {"nodes": {f"p-{n}": {"type": "add"} for n in outputs}},
        "graph": {"nodes": {n: {"type": "add"} for n in outputs}},
    }
    return SessionQueueItem(
        item_id=ITEM, batch_id=more.pop("batch_id", BATCH), status=value, session=session,
        session_id="s-1", **more,
    )


# -- a recording observer and reader -------------------------------------------------------------


@dataclass
class Recorder:
    """The item's batch as the state machine sees it, recording what comes out."""

    listeners: list[Any] = field(default_factory=list)
    moves: list[tuple[str | None, str]] = field(default_factory=list)
    rest_reads: int = 0
    results: list[WorkflowResult] = field(default_factory=list)

    def moved(self, previous: str | None, status: str) -> None:
        self.moves.append((previous, status))

    def check_rest(self, state: ItemState) -> None:
        self.rest_reads += 1

    def settled(self, state: ItemState, result: WorkflowResult) -> None:
        self.results.append(result)


@dataclass
class Reader:
    events: list[RunEvent] = field(default_factory=list)
    closed: bool = False

    def put(self, item: RunEvent) -> None:
        self.events.append(item)

    def close(self) -> None:
        self.closed = True


def make(nodes: int = 2, *, confirmed: bool = True, gap: bool = False) -> tuple[
    ItemState, ItemRoute, Recorder, Reader
]:
    shape = BatchShape(BATCH, node_count=nodes)
    shape.confirmed = confirmed
    recorder = Recorder()
    state = ItemState(ITEM, shape, recorder, gap=gap)
    state.index = 0
    reader = Reader()
    state.listeners = [reader]
    return state, ItemRoute(BATCH, state), recorder, reader


def feed(route: ItemRoute, frames: list[tuple[str, dict[str, Any]]]) -> None:
    for name, data in frames:
        if route.accept(name, data):
            route.target.on_frame(name, data)


def told(reader: Reader) -> list[str]:
    """The reader's events, short: ``status:x``, ``start:n``, ``done:n=v``, ``fail:n``."""
    out = []
    for event in reader.events:
        if isinstance(event, StatusChanged):
            out.append(f"status:{event.status}")
        elif isinstance(event, NodeStarted):
            out.append(f"start:{event.node_id}")
        elif isinstance(event, NodeCompleted):
            out.append(f"done:{event.node_id}={event.output}")
        elif isinstance(event, NodeFailed):
            out.append(f"fail:{event.node_id}:{event.error_type}")
        elif isinstance(event, NodeProgress):
            out.append(f"progress:{event.node_id}")
    return out


HAPPY = [status("in_progress", 1), started("a"), complete("a", 1), started("b"),
         complete("b", 2), status("completed", 2)]
HAPPY_TOLD = ["status:in_progress", "start:a", "done:a=1", "start:b", "done:b=2",
              "status:completed"]

# (story, frames, events told, REST reads asked, final status or None while unsettled)
STORIES: list[tuple[str, list[tuple[str, dict[str, Any]]], list[str], int, str | None]] = [
    ("the socket tells the whole story", HAPPY, HAPPY_TOLD, 0, "completed"),
    ("every frame twice (InvokeAI 6.13)", [f for f in HAPPY for _ in (0, 1)], HAPPY_TOLD, 0,
     "completed"),
    ("a status without sequence repeated", [status("in_progress"), status("in_progress"),
     started("a"), complete("a", 1), started("b"), complete("b", 2), status("completed")],
     HAPPY_TOLD, 0, "completed"),
    ("node events before in_progress: told as in_progress first",
     [started("a"), status("in_progress", 1), complete("a", 1), started("b"),
      complete("b", 2), status("completed", 2)], HAPPY_TOLD, 0, "completed"),
    ("completed before its in_progress and before the last output",
     [started("a"), complete("a", 1), status("completed", 3), status("in_progress", 1),
      complete("b", 2)],
     ["status:in_progress", "start:a", "done:a=1", "start:b", "done:b=2"], 1, None),
    ("complete before start; the late start and progress are ignored",
     [status("in_progress", 1), complete("a", 1), started("a"), progress("a", 0.5),
      started("b"), complete("b", 2), status("completed", 2)],
     ["status:in_progress", "start:a", "done:a=1", "start:b", "done:b=2", "status:completed"],
     0, "completed"),
    ("an older status after a newer one is ignored",
     [status("in_progress", 2), status("pending", 1)], ["status:in_progress"], 0, None),
    ("failed before its invocation_error: REST is asked",
     [status("in_progress", 1), started("a"), status("failed", 2, error_type="ValueError"),
      error("a")], ["status:in_progress", "start:a"], 2, None),
    ("cancel while pending", [status("canceled", 1)], ["status:canceled"], 0, "canceled"),
    ("canceled in bulk (no batch id in the frame)", [canceled_in_bulk()],
     ["status:canceled"], 0, "canceled"),
    ("invocation_complete after canceled changes nothing",
     [status("in_progress", 1), started("a"), status("canceled", 2), complete("a", 1),
      status("completed", 3)],
     ["status:in_progress", "start:a", "status:canceled"], 0, "canceled"),
    ("an output is missing: REST is asked, not guessed",
     [status("in_progress", 1), started("a"), complete("a", 1), status("completed", 2)],
     ["status:in_progress", "start:a", "done:a=1"], 1, None),
]


@pytest.mark.parametrize(("frames", "events", "rest_reads", "final"),
                         [s[1:] for s in STORIES], ids=[s[0] for s in STORIES])
def test_frames_in_events_and_result_out(
    frames: list[tuple[str, dict[str, Any]]], events: list[str], rest_reads: int,
    final: str | None,
) -> None:
    state, route, recorder, reader = make()
    feed(route, frames)
    assert told(reader) == events
    assert recorder.rest_reads == rest_reads
    assert [r.status for r in recorder.results] == ([final] if final else [])
    assert reader.closed == (final is not None)
    counted: dict[str, int] = {}
    for previous, now in [(None, "pending"), *recorder.moves]:
        if previous is not None:
            counted[previous] -= 1
        counted[now] = counted.get(now, 0) + 1
    assert {k: v for k, v in counted.items() if v} == {state.status: 1}


def test_a_story_result_carries_outputs_and_batch_values() -> None:
    shape = BatchShape(BATCH, node_count=2, groups=[[
        {"node_path": "a", "field_name": "value", "items": [10, 20]}]])
    shape.confirmed = True
    recorder = Recorder()
    state = ItemState(ITEM, shape, recorder)
    state.index = 1
    feed(ItemRoute(BATCH, state), HAPPY)
    (result,) = recorder.results
    assert result.ok
    assert dict(result.outputs) == {"a": 1, "b": 2}
    assert dict(result.field_values) == {"a.value": 20}
    assert state.replay()[-1] == StatusChanged(ITEM, BATCH, "completed")


def test_failed_settles_from_rest_with_the_servers_error() -> None:
    state, route, recorder, reader = make()
    feed(route, [status("in_progress", 1), started("a"), status("failed", 2), error("a")])
    assert recorder.results == []
    state.apply_item(rest_item("failed", {}, error_type="ValueError", error_message="bad",
                               error_traceback="tb", status_sequence=2))
    (result,) = recorder.results
    assert (result.status, result.error_node_id, result.error_type) == (
        "failed", "a", "ValueError")
    assert told(reader)[-2:] == ["fail:a:ValueError", "status:failed"]


def test_after_a_socket_gap_the_result_comes_from_rest() -> None:
    state, route, recorder, reader = make(gap=True)
    feed(route, HAPPY)
    assert recorder.results == []
    assert recorder.rest_reads == 1
    state.apply_item(rest_item("completed", {"a": 1, "b": 2}, status_sequence=2))
    (result,) = recorder.results
    assert dict(result.outputs) == {"a": 1, "b": 2}
    assert told(reader) == HAPPY_TOLD


def test_an_iterated_node_heard_once_is_not_taken_as_its_whole_output() -> None:
    # An iterate over [1, 2] runs `plus` twice; with the item's events out of order, the
    # completed status came before the second `plus`, and the run settled with plus == [1].
    # No event tells how many times an iterated node runs: REST does.
    shape = BatchShape(BATCH, node_count=2, iterated=frozenset({"plus"}))
    shape.confirmed = True
    recorder = Recorder()
    state = ItemState(ITEM, shape, recorder)
    route = ItemRoute(BATCH, state)
    feed(route, [status("in_progress", 1), complete("plus", 1, "p-plus-0"),
                 complete("col", 3), status("completed", 2)])
    assert recorder.results == []
    assert recorder.rest_reads == 1


def test_rest_fills_in_what_the_socket_missed() -> None:
    state, route, _, reader = make(gap=True)
    feed(route, [status("in_progress", 1), started("a")])
    state.apply_item(rest_item("completed", {"a": 1, "b": 2}, status_sequence=4))
    assert told(reader) == ["status:in_progress", "start:a", "done:a=1", "start:b", "done:b=2",
                            "status:completed"]


def test_rest_never_moves_an_item_back_to_pending() -> None:
    state, route, _, reader = make()
    feed(route, [status("in_progress", 3)])
    state.apply_status("pending")
    state.apply_status("pending", 2)
    assert state.status == "in_progress"
    assert told(reader) == ["status:in_progress"]


def test_nothing_settles_before_the_batch_is_confirmed() -> None:
    state, route, recorder, _ = make(confirmed=False)
    feed(route, HAPPY)
    assert recorder.results == []
    state.batch.confirmed = True
    state.finish_if_told()
    assert [r.status for r in recorder.results] == ["completed"]


@pytest.mark.parametrize(
    ("frames", "final", "error_type"),
    [
        ([status("in_progress", 1)], "lost", None),
        ([status("in_progress", 1), status("failed", 2), error("a", "OOM")], "failed", "OOM"),
        ([status("canceled", 1)], "canceled", None),
    ],
    ids=["running: lost", "failed on the socket: failed", "already canceled"],
)
def test_an_item_the_server_no_longer_has(
    frames: list[tuple[str, dict[str, Any]]], final: str, error_type: str | None
) -> None:
    state, route, recorder, _ = make()
    feed(route, frames)
    if not recorder.results:
        state.lose("the server no longer has it")
    (result,) = recorder.results
    assert (result.status, result.error_type) == (final, error_type)


def test_a_closing_client_ends_a_detached_item_locally() -> None:
    state, route, recorder, reader = make()
    feed(route, [status("in_progress", 1), started("a"), complete("a", 1)])
    state.end_locally("detached", "the client closed")
    (result,) = recorder.results
    assert (result.status, dict(result.outputs)) == ("detached", {"a": 1})
    assert told(reader)[-1] == "status:detached"
    feed(route, [complete("b", 2), status("completed", 2)])  # later frames change nothing
    assert len(recorder.results) == 1


def test_the_repeat_filter_drops_node_and_progress_repeats() -> None:
    route = ItemRoute(BATCH, make()[0])
    frames = [started("a"), started("a"), progress("a", 0.5), progress("a", 0.5),
              progress("a", 0.6), complete("a", 1), complete("a", 1), status("completed")]
    assert [route.accept(*frame) for frame in frames] == [
        True, False, True, False, True, True, False, True]
