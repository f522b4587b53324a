"""WorkflowHandle.submit / submit_batch: GUI-made workflows as runs, on both peers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from invokeai_client import NotFoundError, RunFailedError, ValidationError, WorkflowResult
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import node_of, png
from .test_runs import needs_queue

pytestmark = pytest.mark.anyio


async def test_submit_runs_the_workflow_with_its_values(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        math, scaled = node_of(wf, "integer_math"), node_of(wf, "float_math")
        first = await (await wf.submit())
        wf.update({"A": 3, "B": 4, "Operation": "ADD", "Factor": 0.5, "Multiplier": 3})
        run = await wf.submit(destination="tests")
        second = await run
    assert first[math] == 42
    assert first[scaled] == 2.5
    assert second[math] == 7
    assert second[scaled] == 1.5
    assert second.field_values == {}
    assert run.batch.destination == "tests"


async def test_a_100_item_sweep_is_one_request_with_100_results(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        a, b = wf.input("A").key, wf.input("B").key
        batch = await wf.submit_batch({"A": range(10), "B": range(10, 20)})
        results: list[WorkflowResult] = [r async for r in batch.as_completed()]
        if peer.double is not None:
            assert peer.double.count("POST", "/api/v1/queue/*/enqueue_batch") == 1
    assert len(results) == 100
    assert len({r.item_id for r in results}) == 100
    pairs = set()
    for result in results:
        values = result.field_values
        assert result[math] == values[a] * values[b]
        pairs.add((values[a], values[b]))
    assert len(pairs) == 100


async def test_zipped_and_crossed_inputs_follow_invokeai_batch_rules(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        math, scaled = node_of(wf, "integer_math"), node_of(wf, "float_math")
        zipped = await (await wf.submit_batch({"A": [1, 2, 3], "B": [10, 20, 30]}, zip=True))
        mixed = await wf.submit_batch(
            {"A": [1, 2], "Factor": [1.0, 2.0, 4.0], "B": [5, 6]}, zip=[["A", "B"]], runs=2
        )
        mixed_results = await mixed
    assert [r[math] for r in zipped] == [10, 40, 90]
    assert len(mixed_results) == 2 * 2 * 3
    # (A, B) pairs zipped, Factor crossed with them; runs outermost.
    assert [(r[math], r[scaled]) for r in mixed_results[:6]] == [
        (5, 1.25), (5, 2.5), (5, 5.0), (12, 1.25), (12, 2.5), (12, 5.0),
    ]
    assert [r.field_values for r in mixed_results[6:]] == [
        r.field_values for r in mixed_results[:6]
    ]


async def test_bad_sweeps_fail_before_any_request(double: Peer) -> None:
    assert double.double is not None
    async with double.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        sent = double.double.count("POST", "/api/v1/queue/*/enqueue_batch")
        with pytest.raises(ValidationError) as caught:
            await wf.submit_batch({"A": [1, "two", 3]})
        assert "A" in str(caught.value)
        with pytest.raises(ValidationError):
            await wf.submit_batch({"A": [1, 2], "B": [1, 2, 3]}, zip=True)
        with pytest.raises(ValidationError, match="not a key of sweep"):
            await wf.submit_batch({"A": [1, 2]}, zip=[["A", "B"]])
        with pytest.raises(ValidationError):
            await wf.submit_batch({"Nope": [1]})
        with pytest.raises(ValidationError):
            await wf.submit_batch({"A": 5})  # type: ignore[dict-item]
        assert double.double.count("POST", "/api/v1/queue/*/enqueue_batch") == sent


async def test_submit_refuses_a_workflow_that_makes_several_items(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("batch-generator"))
        with pytest.raises(ValidationError, match="submit_batch"):
            await wf.submit()
        batch = await wf.submit_batch()
        results = await batch
    assert len(results) > 1
    assert all(r.ok for r in results)


async def test_a_failing_workflow_raises_with_its_node(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        wf.update({"Operation": "DIV", "B": 0})
        run = await wf.submit()
        with pytest.raises(RunFailedError) as caught:
            await run
    assert caught.value.item_id == run.item_id
    assert caught.value.node_id == node_of(wf, "integer_math")
    assert caught.value.error_type == "NodeInputError"  # B reaches the node over an edge
    assert caught.value.error_message.endswith("has invalid incoming input for b")


async def test_submit_takes_a_board_by_name_and_saves_there(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        board = await client.boards.get_or_create("runs-by-board-name")
        wf = await client.workflows.load(examples.path("image-pipeline"))
        result = await (await wf.submit(board="runs-by-board-name"))
        batch = await wf.submit_batch({"Output width": [16, 20]}, board=board.board_id)
        swept = await batch
        names = {image.image_name async for image in client.images.list(board=board)}
        with pytest.raises(NotFoundError, match="no-such-board"):
            await wf.submit(board="no-such-board")
    assert result.image is not None
    assert result.image.image_name in names
    assert {r.image.image_name for r in swept if r.image is not None} <= names
    assert [r.image.width for r in swept if r.image is not None] == [16, 20]


async def test_sweeping_an_unbatchable_input_fails_before_any_request(double: Peer) -> None:
    assert double.double is not None
    async with double.client() as client:
        wf = await client.workflows.load(examples.path("image-pipeline"))
        sent = double.double.count("POST", "/api/v1/queue/*/enqueue_batch")
        with pytest.raises(ValidationError, match="Color") as caught:
            await wf.submit_batch({"Color": ["#ff0000", "#00ff00"]})
        assert caught.value.rule == "batchable type"
        graph = wf.build_graph()
        color = wf.input("Color")
        with pytest.raises(ValidationError, match="image or video field"):
            await client.runs.submit_batch(graph, data=[[{
                "node_path": color.node_id, "field_name": "color",
                "items": [{"r": 1, "g": 2, "b": 3, "a": 255}],
            }]])
        assert double.double.count("POST", "/api/v1/queue/*/enqueue_batch") == sent


async def test_a_board_input_set_by_name_saves_to_that_board(peer: Peer) -> None:
    needs_queue(peer)
    async with peer.client() as client:
        board = await client.boards.create(f"board-input-{uuid.uuid4().hex[:8]}")
        try:
            wf = await client.workflows.load(examples.path("image-pipeline"))
            save = node_of(wf, "save_image")
            wf.set(f"{save}.board", board.board_name)
            result = await (await wf.submit())
            assert wf.get(f"{save}.board") == {"board_id": board.board_id}
            names = {image.image_name async for image in client.images.list(board=board)}
            wf.set(f"{save}.board", "no-such-board-input")
            before = (await client.queue.status()).queue.total
            with pytest.raises(NotFoundError, match="no-such-board-input"):
                await wf.submit()
            assert (await client.queue.status()).queue.total == before  # nothing enqueued
        finally:
            await client.boards.delete(board, delete_images=True)
    assert result.image is not None
    assert result.image.image_name in names


async def test_sweeping_local_image_files_uploads_each_and_cleans_up(
    peer: Peer, tmp_path: Path
) -> None:
    needs_queue(peer)
    files = [tmp_path / "small.png", tmp_path / "wide.png"]
    files[0].write_bytes(png(40, 30))
    files[1].write_bytes(png(64, 16))
    async with peer.client() as client:
        async with await client.workflows.load(examples.path("image-input")) as wf:
            batch = await wf.submit_batch({"Image": [files[0], str(files[1])]})
            results = await batch.results()
            uploads = wf.uploads
            assert len(uploads) == 2
        sizes = [(r.image.width, r.image.height) for r in results if r.image is not None]
        for name in uploads:  # leaving `async with wf` deleted the uploads
            with pytest.raises(NotFoundError, match=name):
                await client.images.get(name)
    assert sizes == [(20, 15), (32, 8)]
