"""Model inputs set by a model's key or name (``wf.set("model", "tiny-sdxl")``): looked up
among the server's installed models of the input's base and type at sync/submit time, with
the rules of ``generate(model=)``; pure choice table, then both peers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from invokeai_client import ModelChoiceError, ModelNotFoundError, ValidationError
from invokeai_client.fields.models import ModelIdentifierField, ModelName
from invokeai_client.fields.schema import InvocationSchemas
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle
from invokeai_client.workflows.model_sync import choose_for_input

from .conftest import SEED_WORKFLOWS, Peer

pytestmark = pytest.mark.anyio

SDXL_FILE = SEED_WORKFLOWS / "sdxl-text-to-image.json"
needs_fixtures = pytest.mark.skipif(not SDXL_FILE.is_file(), reason="no seed workflows")


def installed(name: str, base: str, type: str = "main") -> dict[str, Any]:
    return {"key": f"key-{name}-{base}", "hash": f"blake3:{name}", "name": name, "base": base,
            "type": type}


MODELS = [
    installed("tiny-sd1", "sd-1"), installed("tiny-sdxl", "sdxl"),
    installed("Juggernaut XL", "sdxl"), installed("dup", "sdxl"), installed("dup", "sdxl"),
    installed("tiny-sdxl-vae", "sdxl", "vae"),
]
SDXL_INPUT = ModelIdentifierField(node_id="loader", name="model", label="Model",
                                  ui={"ui_model_base": ["sdxl"], "ui_model_type": ["main"]})


@pytest.mark.parametrize(
    ("wanted", "name"),
    [
        ("key-tiny-sdxl-sdxl", "tiny-sdxl"),  # a key
        ("tiny-sdxl", "tiny-sdxl"),           # an exact name (also a fragment of the VAE's)
        ("juggernaut", "Juggernaut XL"),      # a fragment, any case
        ("tiny", "tiny-sdxl"),                # tiny-sd1 is not of the input's base
    ],
)
def test_a_model_input_takes_a_key_exact_name_or_unique_fragment(wanted: str, name: str) -> None:
    assert choose_for_input(MODELS, wanted, SDXL_INPUT)["name"] == name


@pytest.mark.parametrize(
    ("wanted", "error", "says", "candidates"),
    [
        ("dup", ModelChoiceError, "matches 2 installed models", {"dup"}),
        ("key-tiny-sd1-sd-1", ModelChoiceError, "is a 'tiny-sd1' \\(sd-1 main\\) model",
         {"tiny-sdxl", "dup"}),
        ("tiny-sd1", ModelNotFoundError, "matches no installed model", {"tiny-sdxl"}),
        ("tiny-sdxl-vae", ModelNotFoundError, "matches no installed", {"Juggernaut XL"}),
    ],
)
def test_an_ambiguous_foreign_or_missing_model_lists_the_candidates(
    wanted: str, error: type[Exception], says: str, candidates: set[str]
) -> None:
    with pytest.raises(error, match=says) as caught:
        choose_for_input(MODELS, wanted, SDXL_INPUT)
    assert "'Model' (loader.model)" in str(caught.value)
    assert candidates <= {m["name"] for m in caught.value.candidates}  # type: ignore[attr-defined]
    assert all(m["base"] == "sdxl" for m in caught.value.candidates)  # type: ignore[attr-defined]


@needs_fixtures
def test_a_name_is_kept_until_a_server_looks_it_up() -> None:
    wf = WorkflowHandle(WorkflowDefinition.from_file(SDXL_FILE),
                        schemas=InvocationSchemas.bundled())
    wf.set("model", "tiny-sdxl")
    assert wf.get("model") == ModelName("tiny-sdxl")
    assert wf.is_explicit("model")
    with pytest.raises(ValidationError, match="'tiny-sdxl' is looked up on the server"):
        wf.build_graph()
    with pytest.raises(ValidationError, match="cannot be empty"):
        wf.set("model", " ")


async def _tiny(peer: Peer, request: pytest.FixtureRequest) -> str:
    """The key of tiny-sdxl on ``peer``."""
    if peer.double is not None:
        peer.double.add_model("tiny-sd1", base="sd-1", type="main", format="diffusers")
        return str(peer.double.add_model("tiny-sdxl", base="sdxl", type="main",
                                         format="diffusers")["key"])
    return request.getfixturevalue("real_models")["tiny-sdxl"].key  # type: ignore[no-any-return]


@needs_fixtures
async def test_a_model_set_by_name_is_the_users_choice_on_sync_and_submit(
    peer: Peer, request: pytest.FixtureRequest
) -> None:
    key = await _tiny(peer, request)
    async with peer.client() as client:
        before = await client.queue.item_ids()
        wf = await client.workflows.load(SDXL_FILE)
        wf.update({"Width": 64, "Height": 64, "Steps": 1})
        wf.set("model", "tiny-sd1")  # an SD1 model: not for this SDXL loader
        with pytest.raises(ModelNotFoundError, match="'tiny-sd1' matches no installed") as no:
            await wf.submit()
        assert "tiny-sdxl" in {m["name"] for m in no.value.candidates}
        wf.set("model", "tiny-sdxl")
        with pytest.raises(ValidationError, match="cannot be varied in a batch"):
            await wf.submit_batch({"model": ["tiny-sdxl"]})  # InvokeAI batches carry no models
        assert await client.queue.item_ids() == before

        report = await wf.sync_models()
        (entry,) = [e for e in report if e.field_name == "model" and e.model is not None]
        assert (entry.matched_by, entry.model["key"]) == ("explicit", key)  # type: ignore[index]
        assert wf.get("model")["key"] == key
        again = {e.key: e for e in await wf.sync_models()}[entry.key]  # never overwritten
        assert (again.matched_by, again.model) == ("explicit", entry.model)
        async with peer.client() as other:  # another server: looked up there again
            assert wf.copy(client=other).get("model") == ModelName("tiny-sdxl")

        fresh = await client.workflows.load(SDXL_FILE)
        fresh.update({"Width": 64, "Height": 64, "Steps": 1, "model": "tiny-sdxl"})
        run = await fresh.submit()
        graph = (await client.queue.get(run.item_id)).session["graph"]
        loader = next(n for n in graph["nodes"].values() if n["type"] == "sdxl_model_loader")
        assert loader["model"]["key"] == key
        await run.cancel()


@needs_fixtures
async def test_the_blocking_client_sets_a_model_by_name(
    peer: Peer, request: pytest.FixtureRequest
) -> None:
    from invokeai_client import Client

    key = await _tiny(peer, request)

    def script() -> tuple[str, str]:
        with Client(peer.url) as client:
            wf = client.workflows.load(SDXL_FILE)
            wf.set("model", "tiny-sdxl")
            (entry,) = [e for e in wf.sync_models() if e.model is not None]
            return entry.matched_by, entry.model["key"]  # type: ignore[index]

    assert await anyio.to_thread.run_sync(script) == ("explicit", key)
