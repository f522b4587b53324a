"""Real diffusion on the real server: tiny random-weight SD1.x / SDXL models made locally
(``invokeai_client.testing.tiny_models``), installed through the SDK, then generated with.

The images are noise (random weights); the model probing, loading, denoising with step
previews, decoding, saving on boards and cancelling are InvokeAI's real ones.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_client import (
    AsyncClient,
    ModelInstallError,
    ModelLoadCompleted,
    ModelLoadStarted,
    NodeProgress,
    RunCanceledError,
    WorkflowRun,
)
from invokeai_client.testing.tiny_models import TINY_MODELS, tiny_models_dir
from invokeai_client.types.model_configs import ModelConfig
from invokeai_client.types.wire_events import ModelInstallCompleteEvent, ModelInstallStartedEvent

from .conftest import Peer

pytestmark = [pytest.mark.anyio, pytest.mark.real]

SIZE = 64
STEPS = 3


def test_each_tiny_model_is_probed_as_what_it_imitates(
    real_models: dict[str, ModelConfig],
) -> None:
    assert set(real_models) == set(TINY_MODELS)
    for name, config in real_models.items():
        expected = TINY_MODELS[name]
        assert (config.name, config.base, config.type) == (name, expected.base, expected.type)
        assert config.hash is not None
        assert config.hash.startswith("blake3:")
    assert real_models["tiny-sdxl"].format == "diffusers"
    assert real_models["tiny-sd1"].model_extra is not None
    assert real_models["tiny-sd1"].model_extra.get("variant") == "normal"


async def test_install_is_followed_through_its_events(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    source = tmp_path / "events-vae"
    shutil.copytree(tiny_models_dir() / "tiny-sd1-vae", source)
    async with real_server.client() as client:
        install = await client.models.install(str(source), inplace=True)
        seen = [event async for event in install.events()]
        config = await install
        try:
            assert isinstance(seen[0], ModelInstallStartedEvent)
            assert isinstance(seen[-1], ModelInstallCompleteEvent)
            assert all(getattr(e, "id", install.id) == install.id for e in seen)
            assert (config.name, config.base, config.type) == ("events-vae", "sd-1", "vae")
            assert install.status == "completed"
        finally:
            await client.models.delete(config.key)


async def test_a_broken_model_folder_fails_with_the_servers_reason(
    real_server: Peer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "notes.txt").write_text("the weights never arrived")
    async with real_server.client() as client:
        install = await client.models.install(str(broken), inplace=True)
        with pytest.raises(ModelInstallError, match="No model files or config files") as caught:
            await install
        assert caught.value.job_id == install.id
        assert str(broken) in str(caught.value)
        assert not await client.models.find("broken-model")


async def _events(run: WorkflowRun) -> list[Any]:
    return [event async for event in run.events()]


def _decoded(progress: NodeProgress) -> Image.Image:
    data = progress.preview_bytes()
    assert data is not None
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_twenty_concurrent_runs_keep_their_own_steps_and_sizes(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    sizes = [(SIZE, SIZE + 8 * (i % 3)) for i in range(20)]
    fresh = uuid.uuid4().hex  # nodes seen before are cache hits, which tell no progress
    async with real_server.client() as client:

        async def one(i: int) -> tuple[WorkflowRun, list[Any], Any]:
            width, height = sizes[i]
            run = await client.generate(f"{fresh} {i}", model="tiny-sd1", width=width,
                                        height=height, steps=STEPS, seed=1000 + i)
            story = await _events(run)  # read from the start: progress is live only
            return run, story, await run

        done = await asyncio.gather(*(one(i) for i in range(20)))
    runs = [run for run, _, _ in done]
    results = [result for _, _, result in done]
    assert len({run.item_id for run in runs}) == 20
    for (run, story, result), (width, height) in zip(done, sizes, strict=True):
        assert {event.item_id for event in story} == {run.item_id}
        steps = [e for e in story if isinstance(e, NodeProgress) and e.step is not None]
        assert [(e.node_id, e.step, e.total) for e in steps] == [
            ("denoise_latents", i, STEPS) for i in range(STEPS + 1)
        ]
        for event in steps:
            assert event.image is not None
            assert (event.image.width, event.image.height) == (width, height)
            preview = _decoded(event)
            assert preview.width * height == preview.height * width  # the image's ratio
        assert [(i.width, i.height) for i in result.images] == [(width, height)]
        loads = [e for e in story if isinstance(e, (ModelLoadStarted, ModelLoadCompleted))]
        assert {e.name for e in loads} == {"tiny-sd1"}
        assert {"unet", "vae", "text_encoder"} <= {e.submodel_type for e in loads}
    seeds = {r.outputs["seed"] for r in results}
    assert seeds == set(range(1000, 1020))


async def test_generate_sd1_and_sdxl_on_a_board(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with real_server.client() as client:
        board = await client.boards.create("tiny generations")
        try:
            for name, (width, height) in (("tiny-sd1", (72, 64)), ("tiny-sdxl", (64, 85))):
                run = await client.generate("a lighthouse", model=name, negative="fog",
                                            width=width, height=height, steps=2, seed=5,
                                            board="tiny generations")
                result = await run
                image = result.images[0]
                assert (image.width, image.height) == (width, height // 8 * 8)
                dto = await client.images.get(image.image_name)
                assert dto.board_id == board.board_id
                metadata = await client.images.metadata(image.image_name)
                assert metadata is not None
                assert metadata["model"]["name"] == name
                assert metadata["seed"] == 5
                assert metadata["positive_prompt"] == "a lighthouse"
                png = Image.open(io.BytesIO(await image.download()))
                assert png.size == (image.width, image.height)
        finally:
            await client.boards.delete(board, delete_images=True)


async def test_generate_batch_sends_prompts_and_seeds_in_one_request(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with real_server.client() as client:
        batch = await client.generate_batch(["a", "b"], seeds=[1, 2], model="tiny-sd1",
                                            vae="tiny-sd1-vae", width=SIZE, height=SIZE,
                                            steps=1)
        results = await batch
        assert len(results) == 4
        assert sorted((r.outputs["positive_prompt"], r.outputs["seed"]) for r in results) == [
            ("a", 1), ("a", 2), ("b", 1), ("b", 2)
        ]
        # Each item names what varied as generate()'s arguments do.
        assert {tuple(sorted(dict(r.field_values))) for r in results} == {("prompt", "seed")}
        assert sorted((r.field_values["prompt"], r.field_values["seed"]) for r in results) == [
            ("a", 1), ("a", 2), ("b", 1), ("b", 2)
        ]
        assert all(len(r.images) == 1 for r in results)


async def test_cancelling_mid_denoise_stops_the_run_on_the_server(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with real_server.client() as client:
        board = await client.boards.create("never filled")
        try:
            run = await client.generate(uuid.uuid4().hex, model="tiny-sd1", width=SIZE, height=SIZE,
                                        steps=1000, seed=3, board=board)
            async for event in run.events():
                if isinstance(event, NodeProgress) and (event.step or 0) >= 2:
                    await run.cancel()
                    break
            with pytest.raises(RunCanceledError):
                await run
            item = await client.queue.get(run.item_id)
            assert item.status == "canceled"
            assert await client.boards.image_names(board) == []
        finally:
            await client.boards.delete(board, delete_images=True)


async def test_sync_resolves_tiny_models_by_key_hash_and_name(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    from .conftest import SEED_WORKFLOWS

    path = SEED_WORKFLOWS / "sdxl-text-to-image.json"
    if not path.is_file():
        pytest.skip("../shared/fixtures is not available")
    tiny = real_models["tiny-sdxl"]
    foreign_key = "914b2e5a-b8d3-4da1-965f-b3775bbc5745"  # a key from another machine
    cases = {
        "key": tiny.identifier(),
        "hash": {**tiny.identifier(), "key": foreign_key, "name": "renamed elsewhere"},
        "name": {**tiny.identifier(), "key": foreign_key, "hash": "blake3:" + "0" * 64},
    }
    async with real_server.client() as client:
        for how, embedded in cases.items():
            wf = await client.workflows.load(_with_model(path, embedded))
            report = await wf.sync_models()
            (entry,) = [e for e in report if e.matched_by != "unset"]
            assert entry.matched_by == how
            assert entry.model is not None
            assert entry.model["key"] == tiny.key


def _with_model(path: Path, identifier: dict[str, Any]) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(path.read_text())
    for node in data["nodes"]:
        if node["data"]["type"] == "sdxl_model_loader":
            node["data"]["inputs"]["model"]["value"] = dict(identifier)
    return data


async def test_client_with_events_off_still_generates(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with AsyncClient(real_server.url, events=False) as client:
        result = await (await client.generate("quiet", model="tiny-sd1", width=SIZE,
                                              height=SIZE, steps=1))
        assert [(i.width, i.height) for i in result.images] == [(SIZE, SIZE)]


def test_the_blocking_client_generates_too(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    from invokeai_client.sync import Client

    with Client(real_server.url) as client:
        run = client.generate("blocking", model="tiny-sdxl", width=SIZE, height=SIZE, steps=1)
        image = run.result().images[0]
        copy = client.copy_image_to_board(image, "none")
        assert (copy.width, copy.height) == (SIZE, SIZE)
        assert copy.image_name != image.image_name


async def test_a_user_of_a_multi_user_server_generates_with_the_admins_models(
    real_multiuser_server: Peer, real_multiuser_models: dict[str, ModelConfig]
) -> None:
    from .conftest import USER

    async with real_multiuser_server.client(email=USER[0], password=USER[1]) as client:
        run = await client.generate(uuid.uuid4().hex, model="tiny-sd1", width=SIZE,
                                    height=SIZE, steps=2)
        story = await _events(run)
        result = await run
    assert [(i.width, i.height) for i in result.images] == [(SIZE, SIZE)]
    assert [e.step for e in story if isinstance(e, NodeProgress) and e.step is not None] == [
        0, 1, 2]
    assert any(isinstance(e, ModelLoadCompleted) for e in story)  # sent to the user's room


async def test_a_tiny_lora_is_applied_by_generate(
    real_server: Peer, real_models: dict[str, ModelConfig]
) -> None:
    async with real_server.client() as client:
        run = await client.generate(uuid.uuid4().hex, model="tiny-sd1", width=SIZE,
                                    height=SIZE, steps=2, loras={"tiny-sd1-lora": 0.8})
        story = await _events(run)
        result = await run
        metadata = await client.images.metadata(result.images[0].image_name)
    loads = {e.name for e in story if isinstance(e, ModelLoadCompleted)}
    assert "tiny-sd1-lora" in loads
    assert metadata is not None
    assert [(m["model"]["name"], m["weight"]) for m in metadata["loras"]] == [
        ("tiny-sd1-lora", 0.8)]
