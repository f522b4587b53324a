"""One-call generation without a diffusion model: model choice, GUI sizes, graph shapes, step
counting and the model-load events of a run (pure, and on both peers where a server helps)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from invokeai_client import ModelChoiceError, NotFoundError, ValidationError
from invokeai_client.generate import (
    GenerateSpec,
    choose_model,
    gui_size,
    text_to_image_graph,
)
from invokeai_client.runs.events import denoise_step
from invokeai_client.types.model_configs import ModelConfig

from .conftest import Peer, wait_until
from .helpers import BUNDLED

pytestmark = pytest.mark.anyio


def model(name: str, base: str = "sd-1", type: str = "main", key: str | None = None) -> ModelConfig:
    return ModelConfig(key=key or f"key-{name}", name=name, base=base, type=type,
                       hash=f"blake3:{name}")


MODELS = [
    model("tiny-sd1"), model("tiny-sdxl", "sdxl"), model("Juggernaut XL v9", "sdxl"),
    model("tiny-sd1-vae", type="vae"), model("flux-dev", "flux"), model("wan", "wan"),
    model("dup"), model("dup", "sdxl"),
]


@pytest.mark.parametrize(
    ("wanted", "name"),
    [
        ("key-tiny-sd1", "tiny-sd1"),          # a key
        ("tiny-sd1", "tiny-sd1"),              # an exact name that is also a fragment of others
        ("tiny-sdxl", "tiny-sdxl"),
        ("JUGGERNAUT", "Juggernaut XL v9"),    # a fragment, any case
        ("flux", "flux-dev"),                  # a base with one main model
    ],
)
def test_model_is_chosen_by_key_exact_name_or_unique_fragment(wanted: str, name: str) -> None:
    assert choose_model(MODELS, wanted).name == name


@pytest.mark.parametrize(
    ("wanted", "says", "candidates"),
    [
        ("tiny", "matches 2 main models", {"tiny-sd1", "tiny-sdxl"}),
        ("dup", "matches 2 main models", {"dup"}),
        ("sd-1", "base 'sd-1' matches 2 main models", {"tiny-sd1", "dup"}),
        ("nothing-like-it", "matches no main model", {"tiny-sd1", "flux-dev", "dup"}),
        (None, "no model was given and it matches", {"tiny-sd1", "tiny-sdxl"}),
        ("key-tiny-sd1-vae", "needs a main model", {"tiny-sd1"}),
        ("key-wan", "needs a main model", {"flux-dev"}),
    ],
)
def test_ambiguous_or_missing_model_lists_the_candidates(
    wanted: str | None, says: str, candidates: set[str]
) -> None:
    with pytest.raises(ModelChoiceError, match=says) as caught:
        choose_model(MODELS, wanted)
    assert caught.value.input == "model"
    assert candidates <= {m.name for m in caught.value.candidates}
    for name in candidates:
        assert repr(name) in str(caught.value)


@pytest.mark.parametrize("wanted", ["sdxl", "SDXL"])
def test_a_base_names_the_only_main_model_of_that_base(wanted: str) -> None:
    models = [model("juggernautXL_v9", "sdxl"), model("dreamshaper_8"),
              model("sdxl-vae", "sdxl", type="vae")]
    assert choose_model(models, wanted).name == "juggernautXL_v9"
    with pytest.raises(ModelChoiceError, match="base 'flux' matches no main model"):
        choose_model(models, "flux")


def test_the_only_usable_model_is_chosen_when_none_is_named() -> None:
    assert choose_model([model("a", type="vae"), model("b", "sdxl")], None).name == "b"


@pytest.mark.parametrize(
    ("value", "base", "size"),
    [(512, "sd-1", 512), (515, "sd-1", 512), (100, "sdxl", 96), (10, "sd-1", 64),
     (1000, "flux", 992), (1020, "flux", 1008), (1023, "sdxl", 1016), (72, "flux", 64)],
)
def test_sizes_are_rounded_down_to_the_guis_grid(value: int, base: str, size: int) -> None:
    assert gui_size(value, base) == size


def _spec(base: str, **kw: Any) -> GenerateSpec:
    return GenerateSpec(model=model(f"m-{base}", base), prompt="a cat", negative="blurry",
                        width=64, height=96, steps=3, seed=7, **kw)


@pytest.mark.parametrize(
    ("base", "loader", "cond", "denoise", "decode"),
    [
        ("sd-1", "main_model_loader", "compel", "denoise_latents", "l2i"),
        ("sdxl", "sdxl_model_loader", "sdxl_compel_prompt", "denoise_latents", "l2i"),
        ("flux", "flux_model_loader", "flux_text_encoder", "flux_denoise", "flux_vae_decode"),
    ],
)
def test_graph_follows_the_models_base(
    base: str, loader: str, cond: str, denoise: str, decode: str
) -> None:
    extras = {k: model(k, "flux" if k == "vae" else "any", k)
              for k in ("t5_encoder", "clip_embed", "vae")}
    graph = text_to_image_graph(_spec(base, board_id="b1", extras=extras))
    types = {node["type"] for node in graph["nodes"].values()}
    assert {loader, cond, denoise, decode, "core_metadata", "integer", "string"} <= types
    for node_id, node in graph["nodes"].items():
        assert node["id"] == node_id
        schema = BUNDLED.get(node["type"])
        assert schema is not None, node["type"]
        for field in node:  # every field is one the server's schema has
            assert field in schema.inputs or field in ("id", "type", "is_intermediate",
                                                       "use_cache"), (node["type"], field)
    out = graph["nodes"]["l2i"]
    assert out["board"] == {"board_id": "b1"}
    assert out["is_intermediate"] is False
    ids = set(graph["nodes"])
    for edge in graph["edges"]:
        assert {edge["source"]["node_id"], edge["destination"]["node_id"]} <= ids
    assert graph["nodes"]["seed"]["value"] == 7
    assert graph["nodes"]["positive_prompt"]["value"] == "a cat"


@pytest.mark.parametrize(("base", "loader"), [("sd-1", "lora_collection_loader"),
                                              ("sdxl", "sdxl_lora_collection_loader")])
def test_loras_are_routed_between_the_loader_and_the_prompts(base: str, loader: str) -> None:
    spec = _spec(base, loras=((model("a-lora", base, "lora"), 0.5),
                              (model("b-lora", base, "lora"), 1.0)))
    graph = text_to_image_graph(spec)
    nodes, edges = graph["nodes"], {
        (e["source"]["node_id"], e["source"]["field"], e["destination"]["node_id"],
         e["destination"]["field"]) for e in graph["edges"]}
    assert nodes["lora_loader"]["type"] == loader
    assert [nodes[f"lora_selector_{i}"]["weight"] for i in (0, 1)] == [0.5, 1.0]
    assert ("lora_loader", "unet", "denoise_latents", "unet") in edges
    assert ("lora_loader", "clip", "pos_cond", "clip") in edges
    assert ("model_loader", "unet", "denoise_latents", "unet") not in edges
    assert [m["weight"] for m in nodes["core_metadata"]["loras"]] == [0.5, 1.0]
    for node in nodes.values():
        schema = BUNDLED.get(node["type"])
        assert schema is not None
        assert set(node) - {"id", "type", "is_intermediate", "use_cache"} <= set(schema.inputs)


def test_a_standalone_vae_is_loaded_when_given() -> None:
    graph = text_to_image_graph(_spec("sd-1", vae=model("tiny-sd1-vae", type="vae")))
    assert graph["nodes"]["vae"]["vae_model"]["name"] == "tiny-sd1-vae"
    assert {"source": {"node_id": "vae", "field": "vae"},
            "destination": {"node_id": "l2i", "field": "vae"}} in graph["edges"]


DENOISE = {"type": "denoise_latents", "steps": 4, "denoising_start": 0, "denoising_end": 1}


@pytest.mark.parametrize(
    ("invocation", "percentage", "index", "known", "expected"),
    [
        (DENOISE, 0.0, 0, None, (0, 4)),              # the noise: total from the node's steps
        (DENOISE, 0.25, 1, 4, (1, 4)),
        (DENOISE, 1.0, 4, 4, (4, 4)),
        ({**DENOISE, "denoising_start": 0.5}, 0.0, 0, None, (0, None)),  # part of the schedule
        ({**DENOISE, "denoising_start": 0.5}, 0.5, 1, None, (1, 2)),     # learnt from the %
        ({"type": "flux_denoise", "num_steps": 3}, 0.0, 0, None, (0, 3)),
        (None, 1 / 3, 1, None, (1, 3)),
        (None, None, 2, 5, (2, 5)),
    ],
)
def test_denoising_steps_are_counted(
    invocation: dict[str, Any] | None, percentage: float | None, index: int,
    known: int | None, expected: tuple[int, int | None],
) -> None:
    assert denoise_step(invocation, percentage, index, known) == expected


# -- against a server (both peers): choices fail before anything is enqueued ---------------


async def _models(peer: Peer, request: pytest.FixtureRequest) -> None:
    if peer.double is not None:
        for name, base in (("tiny-sd1", "sd-1"), ("tiny-sdxl", "sdxl")):
            peer.double.add_model(name, base=base, type="main", format="diffusers")
    else:
        request.getfixturevalue("real_models")


async def test_an_ambiguous_model_fails_before_anything_is_enqueued(
    peer: Peer, request: pytest.FixtureRequest
) -> None:
    await _models(peer, request)
    async with peer.client() as client:
        before = await client.queue.item_ids()
        with pytest.raises(ModelChoiceError, match="matches 2 main models") as caught:
            await client.generate("a cat", model="tiny-sd")
        assert {"tiny-sd1", "tiny-sdxl"} <= {m.name for m in caught.value.candidates}
        with pytest.raises(ModelChoiceError, match="no main model"):
            await client.generate("a cat", model="no-such-model")
        with pytest.raises(ValidationError, match="width"):
            await client.generate("a cat", model="tiny-sd1", width=0)
        with pytest.raises(ValidationError, match="seed"):
            await client.generate_batch(["a", "b"], model="tiny-sd1", seeds=[1, -1])
        assert await client.queue.item_ids() == before


@pytest.mark.parametrize(
    ("options", "name", "rule"),
    [
        ({"scheduler": "bogus"}, "scheduler", "one of the server's schedulers"),
        ({"scheduler": "EULER"}, "scheduler", "one of the server's schedulers"),
        ({"cfg_scale": 0}, "cfg_scale", "number in [1, 200]"),
        ({"cfg_scale": -3}, "cfg_scale", "number in [1, 200]"),
        ({"cfg_scale": float("nan")}, "cfg_scale", "number in [1, 200]"),
        ({"cfg_scale": 201}, "cfg_scale", "number in [1, 200]"),
        ({"width": 100000}, "width", "<= 4096"),
        ({"height": 4097}, "height", "<= 4096"),
        ({"steps": 0}, "steps", "integer >= 1"),
    ],
)
async def test_values_the_server_would_refuse_fail_before_anything_is_enqueued(
    peer: Peer, request: pytest.FixtureRequest, options: dict[str, Any], name: str, rule: str
) -> None:
    await _models(peer, request)
    async with peer.client() as client:
        before = await client.queue.item_ids()
        for call in (client.generate("a cat", model="tiny-sd1", **options),
                     client.generate_batch(["a", "b"], model="tiny-sd1", **options)):
            with pytest.raises(ValidationError) as caught:
                await call
            assert (caught.value.input, caught.value.rule) == (name, rule)
            assert name in str(caught.value)
        assert await client.queue.item_ids() == before


async def test_generate_without_models_says_none_is_installed(double: Peer) -> None:
    async with double.client() as client:
        with pytest.raises(ModelChoiceError, match="none installed"):
            await client.generate("a cat")


async def test_copy_image_to_board_saves_a_new_image_there(peer: Peer) -> None:
    async with peer.client() as client:
        board = await client.boards.create("copies")
        try:
            run = await client.runs.submit({"nodes": {"blank": {
                "id": "blank", "type": "blank_image", "width": 40, "height": 24,
                "is_intermediate": False, "use_cache": False}}, "edges": []})
            original = (await run).images[0]
            copy = await client.copy_image_to_board(original, "copies")
            assert copy.image_name != original.image_name
            assert copy.board_id == board.board_id
            assert (copy.width, copy.height) == (40, 24)
            assert (await client.images.get(original.image_name)).board_id is None
            assert copy.image_name in await client.boards.image_names(board)
        finally:
            await client.boards.delete(board, delete_images=True)


@pytest.mark.parametrize(
    ("image", "error", "says"),
    [
        ("does-not-exist.png", NotFoundError, "'does-not-exist.png' not found"),
        ("../../etc/passwd", ValidationError, "plain file name"),
        ("a/b.png", ValidationError, "plain file name"),
        ("", ValidationError, "non-empty"),
        (42, ValidationError, "image name or an image"),
    ],
)
async def test_copying_a_missing_or_path_like_image_enqueues_nothing(
    peer: Peer, image: Any, error: type[Exception], says: str
) -> None:
    async with peer.client() as client:
        before = await client.queue.item_ids()
        with pytest.raises(error, match=says) as caught:
            await client.copy_image_to_board(image, "none")
        assert getattr(caught.value, "input", "image") == "image"
        assert await client.queue.item_ids() == before


async def test_model_loads_are_told_to_the_executing_run_only(double: Peer) -> None:
    """The router credits a ``model_load_*`` event (which names no item) to the one item of
    this client whose node is executing, and to nobody when none or several are."""
    from invokeai_client import ModelLoadCompleted, ModelLoadStarted, NodeStarted
    from invokeai_client.types.wire_events import parse_event

    async with double.client() as client:
        await client.queue.pause()
        run = await client.runs.submit({"nodes": {"a": {"id": "a", "type": "integer"}},
                                        "edges": []})
        seen: list[Any] = []

        async def read() -> None:
            async for event in run.events():
                seen.append(event)
                if isinstance(event, ModelLoadCompleted):
                    return

        reader = asyncio.ensure_future(read())
        await wait_until(lambda: bool(run._listeners))
        router = client._router
        config = {"key": "k", "name": "tiny-sd1", "base": "sd-1", "type": "main"}
        router.dispatch(parse_event("model_load_started", {"config": config}))  # nobody runs
        frame = {"queue_id": "default", "item_id": run.item_id, "batch_id": run.batch_id,
                 "session_id": "s", "invocation": {"id": "a-1", "type": "integer"},
                 "invocation_source_id": "a"}
        router.dispatch_raw("invocation_started", frame)
        router.dispatch_raw("model_load_started", {"config": config, "submodel_type": "unet"})
        router.dispatch_raw("model_load_complete", {"config": config, "submodel_type": "unet"})
        await asyncio.wait_for(reader, 60)
        loads = [e for e in seen if isinstance(e, (ModelLoadStarted, ModelLoadCompleted))]
        assert [type(e) for e in loads] == [ModelLoadStarted, ModelLoadCompleted]
        assert all(e.name == "tiny-sd1" and e.submodel_type == "unet" for e in loads)
        assert all(e.item_id == run.item_id for e in loads)
        assert any(isinstance(e, NodeStarted) for e in seen)
        await client.queue.resume()
        await run


@pytest.mark.parametrize("method", ["generate", "generate_batch"])
async def test_an_unknown_generate_option_is_a_type_error_before_any_request(
    method: str,
) -> None:
    """``**options: Unpack[GenerateOptions]`` takes only GenerateOptions' keys: a misspelt
    option is refused (nothing listens on port 9: no request is made)."""
    from invokeai_client import AsyncClient

    client = AsyncClient("http://127.0.0.1:9")
    message = rf"^AsyncClient\.{method}\(\) got an unexpected keyword argument 'sampler'$"
    with pytest.raises(TypeError, match=message):
        await getattr(client, method)("a cat", sampler="euler")
