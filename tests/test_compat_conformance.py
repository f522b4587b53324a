"""The conformance subset: what every supported InvokeAI version must do with this SDK.

Each test is one row of docs/compatibility.md. They run against the real server of
``INVOKEAI_TEST_VERSION`` (6.14.2 by default) and the double imitating that version's routes;
``bash scripts/compat.sh`` runs them on every version with a shipped lock and writes the
table. Where a version lacks a feature, the test asserts the SDK's error names that version
(``EndpointNotAvailableError``) instead of the feature working.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from invokeai_client import (
    AsyncClient,
    NodeCompleted,
    NodeProgress,
    RunCanceledError,
    StatusChanged,
    WorkflowRun,
    errors,
)
from invokeai_client._compat import ServerFeatures
from invokeai_client.workflows import examples

from .conftest import PEERS, TEST_VERSION, Peer, wait_until
from .helpers import node_of, png

pytestmark = [pytest.mark.anyio, pytest.mark.compat]

FEATURES = ServerFeatures(TEST_VERSION)


@pytest.fixture(params=PEERS)
async def versioned(request: pytest.FixtureRequest) -> AsyncIterator[Peer]:
    """The real server of TEST_VERSION, and the double imitating that version."""
    if request.param == "real":
        yield request.getfixturevalue("real_server")
        return
    from invokeai_client.testing import InvokeAIDouble

    async with InvokeAIDouble(version=TEST_VERSION) as double:
        yield Peer("double", double.url, double=double)


async def test_opens_and_reports_its_version(versioned: Peer) -> None:
    async with versioned.client() as client:
        info = await client.server_info()
        assert client.is_connected
    assert info.version == TEST_VERSION
    assert info.multiuser is False


async def test_example_workflow_runs_with_changed_inputs(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        math, scaled = node_of(wf, "integer_math"), node_of(wf, "float_math")
        wf.update({"A": 3, "B": 4, "Operation": "ADD", "Factor": 0.5, "Multiplier": 3})
        result = await (await wf.submit())
    assert result[math] == 7
    assert result[scaled] == 1.5


async def test_a_sweep_is_one_batch_with_every_result(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        a, b = wf.input("A").key, wf.input("B").key
        batch = await wf.submit_batch({"A": range(4), "B": range(10, 13)})
        results = [r async for r in batch.as_completed()]
    assert len(results) == 12
    assert {(r.field_values[a], r.field_values[b]) for r in results} == {
        (x, y) for x in range(4) for y in range(10, 13)
    }
    assert all(r[math] == r.field_values[a] * r.field_values[b] for r in results)


@pytest.mark.parametrize("name", examples.names())
async def test_every_example_workflow_runs(versioned: Peer, name: str) -> None:
    """The project's model-free workflows (6.14 GUI export) run on this version as they are."""
    async with versioned.client() as client, await client.workflows.load(
        examples.path(name)
    ) as wf:
        if name == "image-input":
            wf.set("Image", png(20, 15))
        batch = await wf.submit_batch()
        results = await batch
    assert results
    assert all(r.ok for r in results), [(r.error_type, r.error_message) for r in results]


async def test_workflow_library_saves_and_reads_back(versioned: Peer) -> None:
    """6.14 GUI exports (meta.version 3 and 4) go into this version's library in a format its
    GUI reads; a connector workflow on a server before 6.13 is an error naming the version."""
    async with versioned.client() as client:
        plain = await client.workflows.create(examples.path("arithmetic-form"))
        try:
            again = await client.workflows.get_record(plain.workflow_id)
            assert again.workflow["name"] == plain.workflow["name"]
        finally:
            await client.workflows.delete(plain.workflow_id)
        if FEATURES.supports("workflow_meta_v4"):
            v4 = await client.workflows.create(examples.path("connectors-v4"))
            assert v4.workflow["meta"]["version"] == "4.0.0"
            await client.workflows.delete(v4.workflow_id)
        else:
            with pytest.raises(errors.EndpointNotAvailableError, match=TEST_VERSION):
                await client.workflows.create(examples.path("connectors-v4"))


async def test_images_upload_download_and_delete(versioned: Peer) -> None:
    data = png(24, 18)
    async with versioned.client() as client:
        image = await client.images.upload(data)
        assert (image.width, image.height) == (24, 18)
        assert (await client.images.get(image.image_name)).image_name == image.image_name
        # Some versions store the PNG re-encoded: compare the pixels, not the bytes.
        assert _pixels(await client.images.download(image.image_name)) == _pixels(data)
        await client.images.delete(image.image_name)
        with pytest.raises(errors.NotFoundError):
            await client.images.get(image.image_name)


async def test_boards_and_an_image_workflow_saving_to_one(versioned: Peer) -> None:
    async with versioned.client() as client:
        board = await client.boards.create("compat-board")
        try:
            assert (await client.boards.get(board.board_id)).board_name == "compat-board"
            renamed = await client.boards.update(board.board_id, name="compat-board-2")
            assert renamed.board_name == "compat-board-2"
            wf = await client.workflows.load(examples.path("image-pipeline"))
            result = await (await wf.submit(board=board.board_id))
            assert result.images
            saved = await client.images.get(result.images[-1].image_name)
            assert saved.board_id == board.board_id
            assert (await client.images.download(saved.image_name))[:8] == b"\x89PNG\r\n\x1a\n"
            assert saved.image_name in await client.boards.image_names(board.board_id)
        finally:
            await client.boards.delete(board.board_id, delete_images=True)


async def test_queue_status_listing_and_item_reads(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        batch = await wf.submit_batch({"A": [1, 2, 3]})
        await batch
        listed = [item async for item in client.queue.list(batch_id=batch.batch_id)]
        assert sorted(i.item_id for i in listed) == sorted(batch.item_ids)
        assert {i.status for i in listed} == {"completed"}
        item = await client.queue.get(batch.item_ids[0])
        assert item.batch_id == batch.batch_id
        counts = await client.queue.batch_status(batch.batch_id)
        assert counts.completed == 3
        assert (await client.queue.status()).queue.pending == 0


async def test_queue_delete_is_there_or_names_the_version(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        result = await (await wf.submit())
        if FEATURES.supports("queue_delete_item"):
            await client.queue.delete(result.item_id)
            with pytest.raises(errors.NotFoundError):
                await client.queue.get(result.item_id)
        else:
            with pytest.raises(errors.EndpointNotAvailableError, match=TEST_VERSION):
                await client.queue.delete(result.item_id)
        assert await client.queue.prune() >= 0


async def test_retry_is_there_or_names_the_version(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        wf.update({"Operation": "DIV", "B": 0})
        with pytest.raises(errors.RunFailedError) as failed:
            await (await wf.submit())
        if FEATURES.supports("queue_retry"):
            answer = await client.queue.retry(failed.value.item_id)
            assert answer.retried_item_ids == [failed.value.item_id]
        else:
            with pytest.raises(errors.EndpointNotAvailableError, match=TEST_VERSION):
                await client.queue.retry(failed.value.item_id)


async def test_events_tell_each_step_once(versioned: Peer) -> None:
    """One event per step of a run, on every version (6.13 sends each one twice)."""
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        run = await wf.submit()
        seen = [event async for event in run.events()]
        await run
    completed = [e.node_id for e in seen if isinstance(e, NodeCompleted)]
    assert sorted(completed) == sorted(set(completed))
    assert len(completed) == len(run.outputs)
    statuses = [e.status for e in seen if isinstance(e, StatusChanged)]
    assert statuses[-1] == "completed"
    assert statuses.count("completed") == 1


async def test_generate_with_a_tiny_model_tells_each_step(versioned: Peer) -> None:
    """One-call generation: a tiny random-weight SD1 model installed through the SDK (built
    once with 6.14.2's torch; its tokenizer readable by every version's transformers), then
    ``generate()`` at 64x64 with 3 steps, each step told once with a preview."""
    from invokeai_client.testing.tiny_models import install_tiny_models

    if versioned.double is not None:
        pytest.skip("the double runs model-free nodes only (tests/test_generate.py covers it)")
    async with versioned.client() as client:
        installed = await install_tiny_models(client, ["tiny-sd1"])
        assert (installed["tiny-sd1"].base, installed["tiny-sd1"].type) == ("sd-1", "main")
        await client.queue.pause()  # progress is told live only: listen before it starts
        try:
            run = await client.generate(f"a compat cat {uuid.uuid4().hex}", model="tiny-sd1",
                                        width=64, height=64, steps=3, seed=7)
            story = asyncio.ensure_future(_story(run))
            await wait_until(lambda: bool(run._listeners))
        finally:
            await client.queue.resume()
        steps = [e for e in await story if isinstance(e, NodeProgress) and e.step is not None]
        result = await run
    assert [(e.step, e.total) for e in steps] == [(i, 3) for i in range(4)]
    assert all(e.image is not None for e in steps)
    assert [(image.width, image.height) for image in result.images] == [(64, 64)]


async def test_cancel_is_told_by_the_events_and_the_result(versioned: Peer) -> None:
    async with versioned.client() as client:
        await client.queue.pause()
        try:
            wf = await client.workflows.load(examples.path("arithmetic-form"))
            run = await wf.submit()
            statuses: list[str] = []

            async def watch() -> None:
                async for event in run.events():
                    status = getattr(event, "status", None)
                    if status:
                        statuses.append(status)

            watcher = asyncio.create_task(watch())
            await run.cancel()
            with pytest.raises(RunCanceledError):
                await run
            await asyncio.wait_for(watcher, 60)
        finally:
            await client.queue.resume()
    assert statuses[-1] == "canceled"


async def test_a_dropped_socket_loses_no_result(versioned: Peer) -> None:
    async with versioned.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        batch = await wf.submit_batch({"A": range(20)})
        await _drop_socket(client, versioned)
        results = await batch
        assert client.is_connected or await client._events.wait_connected(10)
    assert sorted(r.field_values[wf.input("A").key] for r in results) == list(range(20))
    assert all(r.ok for r in results)


async def _story(run: WorkflowRun) -> list[Any]:
    return [event async for event in run.events()]


def _pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGBA").tobytes()


async def _drop_socket(client: AsyncClient, peer: Peer) -> None:
    """Cut the client's socket as a network failure would (no close frame)."""
    if peer.double is not None:
        assert await peer.double.drop_sockets() >= 1
        return
    sio = client._events._sio
    assert sio is not None
    ws = getattr(sio.eio, "ws", None)
    connection = getattr(getattr(ws, "_response", None), "connection", None)
    transport = getattr(connection, "transport", None) or getattr(
        getattr(ws, "_writer", None), "transport", None
    )
    assert transport is not None, "cannot reach the websocket's transport"
    transport.abort()
