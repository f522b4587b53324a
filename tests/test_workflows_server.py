"""The project's example workflows on the REAL InvokeAI (and, where its routes exist, the
double): the built graphs are accepted and run with the expected values; loading through a
client types inputs from /openapi.json."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import AsyncClient, NotFoundError, ValidationError
from invokeai_client.fields import FloatField, ImageField, IntegerField
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import node_of, outputs, wait_items

pytestmark = pytest.mark.anyio

QUEUE = "/api/v1/queue/default"


@pytest.fixture
async def both(peer: Peer) -> AsyncIterator[AsyncClient]:
    """The real server, then the double (whose queue runs model-free nodes too)."""
    async with peer.client(events=False) as client:
        yield client


async def run(
    client: AsyncClient, body: dict[str, Any], timeout: float = 120
) -> list[dict[str, Any]]:
    """Enqueue one batch and wait for all its items (the run API belongs to another area)."""
    answer = await client._request("POST", f"{QUEUE}/enqueue_batch", json=body)
    done = await wait_items(client, answer["item_ids"], timeout)
    items = [done[item_id] for item_id in answer["item_ids"]]
    for item in items:
        assert item["status"] == "completed", (item.get("error_type"), item.get("error_message"))
    return items


def output(item: dict[str, Any], node_id: str) -> dict[str, Any]:
    found = outputs(item, node_id)
    assert len(found) == 1
    return found[0]


async def delete_images(client: AsyncClient, items: list[dict[str, Any]]) -> None:
    for item in items:
        for result in item["session"]["results"].values():
            image = result.get("image") if isinstance(result, dict) else None
            if isinstance(image, dict) and "image_name" in image:
                with contextlib.suppress(NotFoundError):
                    await client._request("DELETE", f"/api/v1/images/i/{image['image_name']}")


# -- loading through a client (both peers) -------------------------------------------------


async def test_load_types_inputs_from_the_servers_schemas(peer: Peer) -> None:
    async with peer.client(events=False) as client:
        path = examples.path("arithmetic-form")
        from_path = await client.workflows.load(path)
        from_text = await client.workflows.load(path.read_text())
        from_dict = await client.workflows.load(json.loads(path.read_text()))
        for h in (from_path, from_text, from_dict):
            assert [i.label for i in h.inputs] == ["A", "B", "Operation", "Factor", "Multiplier"]
            assert isinstance(h.field("A"), IntegerField)
            assert isinstance(h.field("Factor"), FloatField)
            assert h.schemas is not None
            assert "integer_math" in h.schemas
        if peer.double is not None:
            assert peer.double.count("GET", "/openapi.json") == 1  # fetched once per client
        image = await client.workflows.load(examples.path("image-input"))
        assert isinstance(image.field("Image"), ImageField)
        offline = await client.workflows.load(path, typed=False)
        assert offline.schemas is None


# -- the examples on both peers ------------------------------------------------------------


async def test_form_workflow_runs_with_defaults_and_new_values(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("arithmetic-form"))
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "integer_math"))["value"] == 42
    assert output(item, node_of(h, "float_math"))["value"] == 2.5
    h.update({"A": 3, "B": 4, "Operation": "ADD", "Factor": 0.5, "Multiplier": 3})
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "integer_math"))["value"] == 7
    assert output(item, node_of(h, "float_math"))["value"] == 1.5
    assert item["workflow"]  # the GUI-style workflow was attached and kept


async def test_legacy_exposed_fields_workflow_runs(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("legacy-exposed-fields"))
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "string_join"))["value"] == "hello world"
    h.set("Left", "bye").set("Right", "!")
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "string_join"))["value"] == "bye!"


async def test_notes_and_collapsed_edge_workflow_runs(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("notes-collapsed"))
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "mul"))["value"] == 20
    assert set(item["session"]["graph"]["nodes"]) == set(h.build_graph()["nodes"])


async def test_iterate_collect_workflow_runs(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("iterate-collect"))
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "collect"))["collection"] == [10, 11, 12]
    h.update({"Stop": 5, "Add": 1})
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "collect"))["collection"] == [1, 2, 3, 4, 5]
    assert len(outputs(item, node_of(h, "add"))) == 5


async def test_connector_workflow_runs(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("connectors-v4"))
    h.set("Source", 10)
    (item,) = await run(both, h.build_batch())
    assert output(item, node_of(h, "add"))["value"] == 11
    assert output(item, node_of(h, "mul"))["value"] == 30


async def test_batch_generator_workflow_makes_one_item_per_value(both: AsyncClient) -> None:
    h = await both.workflows.load(examples.path("batch-generator"))
    items = await run(both, h.build_batch())
    plus = node_of(h, "add")
    assert sorted(output(i, plus)["value"] for i in items) == [101, 102, 103]
    user = await run(both, h.build_batch(data=[[h.batch_datum("Add", [1000, 2000])]], runs=1))
    assert sorted(output(i, plus)["value"] for i in user) == [1001, 1002, 1003, 2001, 2002, 2003]


async def test_image_pipeline_saves_the_expected_image_on_a_board(both: AsyncClient) -> None:
    board = await both.boards.create(f"wf-{uuid.uuid4().hex[:8]}")
    items: list[dict[str, Any]] = []
    try:
        h = await both.workflows.load(examples.path("image-pipeline"))
        h.set("Output width", 40).set("Output height", 20)
        items = await run(both, h.build_batch(board=board))
        saved = output(items[0], node_of(h, "save_image"))
        assert (saved["width"], saved["height"]) == (40, 20)
        dto = await both._request("GET", f"/api/v1/images/i/{saved['image']['image_name']}")
        assert dto["board_id"] == board.board_id
        assert dto["is_intermediate"] is False
        blank = output(items[0], node_of(h, "blank_image"))
        assert (blank["width"], blank["height"]) == (64, 48)
    finally:
        await delete_images(both, items)
        await both.boards.delete(board, delete_images=True)


async def test_local_images_are_uploaded_and_cleaned_up(both: AsyncClient, tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    picture = pil.new("RGB", (40, 30), (10, 200, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    file = tmp_path / "input.png"
    file.write_bytes(buffer.getvalue())
    items: list[dict[str, Any]] = []
    h = await both.workflows.load(examples.path("image-input"))
    uploaded: list[str] = []
    try:
        for source in (picture, buffer.getvalue(), file):
            async with h.copy() as run_handle:
                run_handle.set("Image", source)
                with pytest.raises(ValidationError, match="upload"):
                    run_handle.build_batch()
                names = await run_handle.upload_images()
                assert len(names) == 1
                assert run_handle.uploads == names
                assert await run_handle.upload_images() == []  # uploaded once per handle
                uploaded.extend(names)
                items += await run(both, run_handle.build_batch())
                saved = output(items[-1], node_of(h, "save_image"))
                assert (saved["width"], saved["height"]) == (20, 15)
        for name in uploaded:  # leaving `async with` deleted each handle's uploads
            with pytest.raises(NotFoundError):
                await both._request("GET", f"/api/v1/images/i/{name}")
    finally:
        await delete_images(both, items)


async def test_bad_local_image_fails_before_any_request(both: AsyncClient, tmp_path: Path) -> None:
    h = await both.workflows.load(examples.path("image-input"))
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image")
    h.set("Image", text_file)
    with pytest.raises(ValidationError, match="not an image"):
        await h.upload_images()
    h.set("Image", tmp_path / "missing.png")
    with pytest.raises(ValidationError, match="does not exist"):
        await h.upload_images()
    assert h.uploads == []
