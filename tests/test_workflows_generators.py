"""Generator nodes that need the server: board images and dynamic prompts."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from invokeai_client import ValidationError

from .conftest import Peer
from .helpers import gui_node, gui_workflow

pytestmark = pytest.mark.anyio


def batch_workflow(kind: str, generator: dict[str, Any]) -> dict[str, Any]:
    """``<kind>_generator -> <kind>_batch -> target``, as the GUI saves it."""
    gen = gui_node(f"{kind}_generator", {"generator": generator})
    batch = gui_node(f"{kind}_batch", {"batch_group_id": "None"})
    collection = "images" if kind == "image" else "strings"
    batch["data"]["inputs"][collection].pop("value", None)
    target = gui_node("save_image" if kind == "image" else "string_join", {})
    target_field = "image" if kind == "image" else "string_left"
    edges = [
        {
            "id": "e1",
            "type": "default",
            "source": gen["id"],
            "sourceHandle": collection,
            "target": batch["id"],
            "targetHandle": collection,
        },
        {
            "id": "e2",
            "type": "default",
            "source": batch["id"],
            "sourceHandle": "image" if kind == "image" else "value",
            "target": target["id"],
            "targetHandle": target_field,
        },
    ]
    return gui_workflow(f"{kind} generator", [gen, batch, target], edges)


async def test_dynamic_prompt_generator_is_resolved_by_the_server(real_server: Peer) -> None:
    data = batch_workflow(
        "string",
        {
            "type": "string_generator_dynamic_prompts_combinatorial",
            "input": "a {red|blue} ball",
            "maxPrompts": 10,
        },
    )
    async with real_server.client(events=False) as client:
        h = await client.workflows.load(data)
        with pytest.raises(ValidationError, match="resolve_generators"):
            h.build_batch()
        await h.resolve_generators()
        (group,) = h.build_batch()["batch"]["data"]
        assert sorted(group[0]["items"]) == ["a blue ball", "a red ball"]
        assert group[0]["node_path"] == data["nodes"][2]["id"]


async def test_board_image_generator_lists_the_boards_images(peer: Peer) -> None:
    pil = pytest.importorskip("PIL.Image")
    async with peer.client(events=False) as client:
        board = await client.boards.create(f"gen-{uuid.uuid4().hex[:8]}")
        try:
            names = []
            for color in ("red", "blue"):
                buffer = io.BytesIO()
                pil.new("RGB", (8, 8), color).save(buffer, format="PNG")
                dto = await client.images.upload(buffer.getvalue(), board=board, category="user")
                names.append(dto.image_name)
            data = batch_workflow(
                "image",
                {
                    "type": "image_generator_images_from_board",
                    "board_id": board.board_id,
                    "category": "assets",
                },
            )
            h = await client.workflows.load(data)
            await h.resolve_generators()
            (group,) = h.build_batch()["batch"]["data"]
            assert sorted(i["image_name"] for i in group[0]["items"]) == sorted(names)
        finally:
            await client.boards.delete(board, delete_images=True)


@pytest.mark.parametrize("kind", ["string", "image"])
async def test_a_generator_whose_type_is_not_a_string_is_refused_by_name(
    kind: str, double: Peer
) -> None:
    data = batch_workflow(kind, {"type": ["not", "a", "string"], "input": "x"})
    async with double.client(events=False) as client:
        h = await client.workflows.load(data)
        await h.resolve_generators()  # nothing for the server to compute
        with pytest.raises(ValidationError, match="'type' must be a string"):
            h.build_batch()
