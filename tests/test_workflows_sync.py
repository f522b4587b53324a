"""Model sync: key, then hash, then name+base+type against the server's installed models."""

from __future__ import annotations

import re
from typing import Any

import pytest

from invokeai_client import ModelNotFoundError, WorkflowError
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle

from .conftest import Peer
from .helpers import gui_node, gui_workflow

pytestmark = pytest.mark.anyio

MAIN = {
    "key": "k-main",
    "hash": "blake3:main",
    "name": "flux1-schnell",
    "base": "flux",
    "type": "main",
}
T5 = {"key": "k-t5", "hash": "blake3:t5", "name": "t5_int8", "base": "any", "type": "t5_encoder"}
CLIP = {
    "key": "k-clip",
    "hash": "blake3:clip",
    "name": "clip-vit-large",
    "base": "any",
    "type": "clip_embed",
}
VAE = {"key": "k-vae", "hash": "blake3:vae", "name": "FLUX.1-ae", "base": "flux", "type": "vae"}
SDXL = {
    "key": "k-sdxl",
    "hash": "blake3:sdxl",
    "name": "juggernaut",
    "base": "sdxl",
    "type": "main",
}


def model_workflow() -> dict[str, Any]:
    flux = gui_node(
        "flux_model_loader",
        {"model": MAIN, "t5_encoder_model": T5, "clip_embed_model": CLIP, "vae_model": VAE},
    )
    sdxl = gui_node("sdxl_model_loader", {"model": SDXL})
    exposed = [
        {"nodeId": flux["id"], "fieldName": "model"},
        {"nodeId": sdxl["id"], "fieldName": "model"},
    ]
    return gui_workflow("models", [flux, sdxl], exposed=exposed)


async def test_sync_matches_by_key_then_hash_then_name(double: Peer) -> None:
    assert double.double is not None
    d = double.double
    d.add_model("flux1-schnell", base="flux", type="main", key="k-main", hash="blake3:other")
    d.add_model("t5_int8", base="any", type="t5_encoder", key="k-t5-here", hash="blake3:t5")
    d.add_model(
        "clip-vit-large", base="any", type="clip_embed", key="k-clip-here", hash="blake3:clip-here"
    )
    d.add_model("FLUX.1-ae", base="flux", type="vae", key="k-vae-here", hash="blake3:vae")
    d.add_model("juggernaut", base="sdxl", type="main", key="k-sdxl-here", hash="blake3:x")
    data = model_workflow()
    async with double.client(events=False) as client:
        h = await client.workflows.load(data)
        before = h.definition.to_dict()
        report = await h.sync_models()
        how = {(e.node_id, e.field_name): e.matched_by for e in report}
        flux_id, sdxl_id = data["nodes"][0]["id"], data["nodes"][1]["id"]
        assert how == {
            (flux_id, "model"): "key",
            (flux_id, "t5_encoder_model"): "hash",
            (flux_id, "clip_embed_model"): "name",
            (flux_id, "vae_model"): "hash",
            (sdxl_id, "model"): "name",
        }
        assert h.get(f"{flux_id}.t5_encoder_model")["key"] == "k-t5-here"
        assert h.get(f"{flux_id}.clip_embed_model")["key"] == "k-clip-here"
        graph = h.build_graph()
        assert graph["nodes"][sdxl_id]["model"]["key"] == "k-sdxl-here"
        assert h.definition.to_dict() == before  # the definition is never changed
        fresh = await client.workflows.load(data)
        assert fresh.get(f"{sdxl_id}.model")["key"] == "k-sdxl"  # nor other handles
        assert {e.key for e in report.changed} == {
            f"{flux_id}.model",
            f"{flux_id}.t5_encoder_model",
            f"{flux_id}.clip_embed_model",
            f"{flux_id}.vae_model",
            f"{sdxl_id}.model",
        }


async def test_sync_never_overrides_a_model_set_on_the_handle(double: Peer) -> None:
    assert double.double is not None
    double.double.add_model("juggernaut", base="sdxl", type="main", key="k-sdxl-here")
    for model in (MAIN, T5, CLIP, VAE):
        double.double.add_model(
            model["name"],
            base=model["base"],
            type=model["type"],
            key=model["key"],
            hash=model["hash"],
        )
    data = model_workflow()
    sdxl_id = data["nodes"][1]["id"]
    mine = {**SDXL, "key": "my-choice", "name": "mine"}
    async with double.client(events=False) as client:
        h = await client.workflows.load(data)
        h.set(f"{sdxl_id}.model", mine)
        report = await h.sync_models()
        entry = next(e for e in report if e.node_id == sdxl_id)
        assert entry.matched_by == "explicit"
        assert h.get(f"{sdxl_id}.model") == mine


async def test_unresolved_models_list_candidates_and_change_nothing(double: Peer) -> None:
    assert double.double is not None
    d = double.double
    d.add_model("flux1-schnell", base="flux", type="main", key="k-main")
    d.add_model("another-ae", base="flux", type="vae", key="k-other-vae")
    data = model_workflow()
    async with double.client(events=False) as client:
        h = await client.workflows.load(data)
        with pytest.raises(ModelNotFoundError) as caught:
            await h.sync_models()
        message = str(caught.value)
        assert "'FLUX.1-ae' (flux vae)" in message
        assert "'another-ae'" in message  # a candidate of the same base and type
        assert "'juggernaut' (sdxl main)" in message
        assert "none installed" in message
        assert any(c["key"] == "k-other-vae" for c in caught.value.candidates)
        flux_id = data["nodes"][0]["id"]
        assert h.get(f"{flux_id}.model") == MAIN  # nothing applied when sync fails


async def test_sync_on_the_real_server_without_models_fails_clearly(real_server: Peer) -> None:
    async with real_server.client(events=False) as client:
        h = await client.workflows.load(model_workflow())
        with pytest.raises(ModelNotFoundError) as caught:
            await h.sync_models()
        message = str(caught.value)
        assert re.search(r"\(\d+ installed\)", message)  # the tiny test models may be there
        assert "'flux1-schnell' (flux main)" in message
        assert "'Model'" in message or ".model" in message


async def test_workflow_without_models_syncs_to_an_empty_report(peer: Peer) -> None:
    from invokeai_client.workflows import examples

    async with peer.client(events=False) as client:
        h = await client.workflows.load(examples.path("image-pipeline"))
        report = await h.sync_models()
        assert list(report) == []
        assert str(report) == "(no model inputs)"


async def test_offline_handle_cannot_sync() -> None:
    h = WorkflowHandle(WorkflowDefinition.from_dict(model_workflow()))
    assert len(h.model_fields()) == 5  # found from the values, without schemas
    with pytest.raises(WorkflowError, match="no client"):
        await h.sync_models()
