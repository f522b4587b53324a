"""GUI-made diffusion workflows on the real server with the tiny random-weight models: the
seed project's SDXL text-to-image export and the SD1.5 one InvokeAI ships in its library."""

from __future__ import annotations

import copy
import io
import json
import uuid
from typing import Any

import pytest
from PIL import Image

from invokeai_client import NodeProgress
from invokeai_client.types.model_configs import ModelConfig

from .conftest import SEED_WORKFLOWS, Peer
from .helpers import BUNDLED

pytestmark = [pytest.mark.anyio, pytest.mark.real]

SDXL_FILE = SEED_WORKFLOWS / "sdxl-text-to-image.json"
SDXL_CAPTURE = SEED_WORKFLOWS / "api-calls" / "call-wf-sdxl-text-to-image.json"
needs_fixtures = pytest.mark.skipif(
    not (SDXL_FILE.is_file() and SDXL_CAPTURE.is_file()),
    reason="../shared/fixtures is not available",
)


def _as_if_exported_elsewhere(data: dict[str, Any], tiny: ModelConfig) -> dict[str, Any]:
    """The workflow as exported on another machine that has the same weights: the model
    inputs carry that machine's key and name, and the weights' hash."""
    data = copy.deepcopy(data)
    for node in data["nodes"]:
        value = node.get("data", {}).get("inputs", {}).get("model", {}).get("value")
        if isinstance(value, dict) and value.get("type") == "main":
            value.update(key=str(uuid.uuid4()), hash=tiny.hash, name="tiny-sdxl (theirs)",
                         base=tiny.base)
    return data


def _node_id(data: dict[str, Any], node_type: str) -> str:
    return next(n["id"] for n in data["nodes"] if n.get("data", {}).get("type") == node_type)


@needs_fixtures
async def test_sdxl_seed_workflow_syncs_runs_and_builds_the_guis_graph(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    tiny = real_models["tiny-sdxl"]
    data = _as_if_exported_elsewhere(json.loads(SDXL_FILE.read_text()), tiny)
    seed_node = _node_id(data, "rand_int")
    prompt = f"a red planet {uuid.uuid4().hex[:8]}"
    async with real_server.client() as client:
        board = await client.boards.create("seed workflow")
        try:
            wf = await client.workflows.load(data)
            report = await wf.sync_models()
            (entry,) = [e for e in report if e.matched_by != "unset"]
            assert (entry.matched_by, entry.model) == ("hash", tiny.identifier())
            wf.update({"positive prompt": prompt, "negative prompt": "blur", "Width": 72,
                       "Height": 64, "Steps": 2, "board": board.board_id,
                       f"{seed_node}.low": 42, f"{seed_node}.high": 43})
            run = await wf.submit()
            steps = [e.step async for e in run.events()
                     if isinstance(e, NodeProgress) and e.step is not None]
            result = await run
            assert steps == [0, 1, 2]
            (image,) = result.images
            assert (image.width, image.height) == (72, 64)
            assert (await client.images.get(image.image_name)).board_id == board.board_id
            png = Image.open(io.BytesIO(await image.download()))
            assert png.size == (72, 64)
            assert (await client.images.metadata(image.image_name) or {})["seed"] == 42
            graph = (await client.queue.get(run.item_id)).session["graph"]
        finally:
            await client.boards.delete(board, delete_images=True)
    # What the GUI enqueued for this workflow (captured), with the same form values and the
    # synced model, is what the server got from us.
    gui = json.loads(SDXL_CAPTURE.read_text())["session"]["graph"]
    expected = copy.deepcopy(gui["nodes"])
    for node in expected.values():
        if node["type"] == "sdxl_model_loader":
            node["model"] = tiny.identifier()
    changes = {("positive_prompt:kjUMdcg0zO", "value"): prompt,
               ("484ecc77-b7a0-4e19-b793-cc313f20fbe6", "value"): "blur",
               ("noise:f4Bv4UWa22", "width"): 72, ("noise:f4Bv4UWa22", "height"): 64,
               ("denoise_latents:TRC0Y88EWe", "steps"): 2,
               ("canvas_output:JbPTiAJ26r", "board"): {"board_id": board.board_id},
               (seed_node, "low"): 42, (seed_node, "high"): 43}
    for (node_id, field), value in changes.items():
        expected[node_id][field] = value
    ours = {node_id: {k: v for k, v in node.items() if k != "id"}
            for node_id, node in graph["nodes"].items()}
    theirs = {node_id: {k: v for k, v in node.items() if k != "id"}
              for node_id, node in expected.items()}
    assert set(ours) == set(theirs)
    for node_id, node in ours.items():
        schema = BUNDLED.get(node["type"])
        assert schema is not None
        for key in set(node) | set(theirs[node_id]):
            if key in theirs[node_id]:
                assert node.get(key) == theirs[node_id][key], (node_id, key)
            else:  # a field newer than the capture's server: 6.14.2 filled in its default
                assert node[key] == schema.inputs[key].get("default"), (node_id, key)
    assert _edges(graph) == _edges(gui)


def _edges(graph: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(e["source"]["node_id"], e["source"]["field"], e["destination"]["node_id"],
             e["destination"]["field"]) for e in graph["edges"]}


async def test_the_sd15_library_workflow_runs_with_the_tiny_model(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with real_server.client() as client:
        found = [w async for w in client.workflows.list(query="Text to Image - SD1.5")
                 if w.name == "Text to Image - SD1.5"]
        assert found, "InvokeAI ships 'Text to Image - SD1.5' in its library"
        wf = await client.workflows.get(found[0].workflow_id)
        fields = {i.field_name: i for i in wf.inputs}
        model_input = next(i for i in wf.inputs if type(i.field).__name__ ==
                           "ModelIdentifierField")
        wf.set(model_input, real_models["tiny-sd1"].identifier())
        widths = [i for i in wf.inputs if i.field_name == "width"]
        heights = [i for i in wf.inputs if i.field_name == "height"]
        for inputs, value in ((widths, 64), (heights, 80)):
            for item in inputs:
                wf.set(item, value)
        if "steps" in fields:
            wf.set(fields["steps"], 2)
        report = await wf.sync_models()  # the user's choice stays
        assert {e.matched_by for e in report if e.key == model_input.key} == {"explicit"}
        result = await (await wf.submit())
        assert [(i.width, i.height) for i in result.images] == [(64, 80)]
