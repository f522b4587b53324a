"""``invokeai-client generate`` (what ``bash scripts/main.sh`` runs): text to image over seeds
with the server's main model, the tiny random-weight ones on a local server, and the
model-free demo when a server has no main model."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import anyio
import pytest

from invokeai_client import AsyncClient
from invokeai_client.cli._console import EXIT_PIPE_CLOSED
from invokeai_client.cli.generate import demo_model, parse_seeds
from invokeai_client.types.model_configs import ModelConfig

from .conftest import Peer
from .test_cli import cli, head_1, pngs, size_of


@pytest.mark.parametrize(
    ("text", "seeds"), [("1..4", [1, 2, 3, 4]), ("7", [7]), ("3,1,2", [3, 1, 2])]
)
def test_seeds_are_a_list_or_a_range(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.real
def test_generate_saves_one_image_per_seed(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    done = cli("generate", "--url", real_server.url, "a small boat", "--model", "tiny-sdxl",
               "--seeds", "4..6", "--width", "72", "--height", "64", "--steps", "2",
               "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "RANDOM-WEIGHT" in done.stderr
    assert [p.name for p in pngs(tmp_path)] == ["001-seed4.png", "002-seed5.png",
                                                "003-seed6.png"]
    assert {size_of(p) for p in pngs(tmp_path)} == {(72, 64)}
    assert done.stdout.split() == [str(p) for p in pngs(tmp_path)]
    listing = json.loads((tmp_path / "results.json").read_text())  # as run's
    assert listing["model"]["name"] == "tiny-sdxl"
    assert [(i["index"], i["status"], i["values"], i["files"]) for i in listing["items"]] == [
        (n, "completed", {"prompt": "a small boat", "seed": seed},
         [str(tmp_path / f"00{n + 1}-seed{seed}.png")])
        for n, seed in enumerate((4, 5, 6))
    ]
    assert "3 items: 3 completed, 0 failed, 0 canceled" in done.stderr


@pytest.mark.real
def test_generate_json_lines_and_a_created_board(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    board = f"gen-board-{time.monotonic_ns()}"
    done = cli("generate", "--url", real_server.url, "a kite", "--model", "tiny-sd1",
               "--seeds", "1,2", "--width", "64", "--height", "64", "--steps", "1",
               "--out", str(tmp_path), "--json", "--board", board, "--create-board")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["item", "item", "summary"]
    assert sorted(line["values"]["seed"] for line in lines[:2]) == [1, 2]
    for line in lines[:2]:
        (path,) = line["files"]
        assert size_of(Path(path)) == (64, 64)
    assert lines[2]["completed"] == 2
    assert lines[2]["exit_code"] == 0
    assert Path(lines[2]["results"]) == tmp_path / "results.json"

    async def on_board() -> set[str]:
        async with AsyncClient(real_server.url) as client:
            found = await client.boards.resolve_board(board)
            names = {image.image_name async for image in client.images.list(board=found)}
            await client.boards.delete(found, delete_images=True)
            return names

    assert anyio.run(on_board) == {image for line in lines[:2] for image in line["images"]}


@pytest.mark.real
def test_generate_with_a_closed_stdout_cancels_the_rest_and_exits_141(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    """The same policy as ``run``: ``generate ... | head -1`` cancels the rest of the batch,
    writes results.json and exits 141 (128 + SIGPIPE), quietly."""
    first, code, err = head_1([
        "generate", "--url", real_server.url, "--model", "tiny-sd1", "--seeds", "1..60",
        "--width", "64", "--height", "64", "--steps", "4", "--out", str(tmp_path),
    ], tmp_path)
    assert first.endswith(".png")
    assert code == EXIT_PIPE_CLOSED
    assert "Traceback" not in err
    assert "stdout was closed: canceling the batch on the server" in err
    items = json.loads((tmp_path / "results.json").read_text())["items"]
    assert len(items) == 60
    statuses = {item["status"] for item in items}
    assert statuses <= {"completed", "canceled"}
    assert "canceled" in statuses


@pytest.mark.real
def test_an_ambiguous_model_is_an_input_error(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    done = cli("generate", "--url", real_server.url, "--model", "tiny", "--out", str(tmp_path))
    assert done.returncode == 3
    assert "matches 2 main models" in done.stderr
    assert "'tiny-sd1'" in done.stderr
    assert not tmp_path.exists() or not pngs(tmp_path)


@pytest.mark.real
def test_without_a_url_it_generates_with_the_tiny_models_of_its_own_invokeai(
    tmp_path: Path,
) -> None:
    done = cli("generate", "--seeds", "1..2", "--width", "64", "--height", "64", "--steps",
               "2", "--out", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stderr
    assert "tiny random-weight test models" in done.stderr
    assert [size_of(p) for p in pngs(tmp_path)] == [(64, 64), (64, 64)]
    url = next(
        word for line in done.stderr.splitlines() if "ready at" in line
        for word in line.split() if word.startswith("http://")
    )
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/api/v1/app/version", timeout=5)


@pytest.mark.anyio
async def test_a_server_without_models_runs_the_demo_with_or_demo(
    double: Peer, tmp_path: Path
) -> None:
    import anyio

    done = await anyio.to_thread.run_sync(
        lambda: cli("generate", "--url", double.url, "--or-demo", "--out", str(tmp_path))
    )
    assert done.returncode == 0, done.stderr
    assert "running the model-free demo" in done.stderr
    assert len(pngs(tmp_path)) == 8
    plain = await anyio.to_thread.run_sync(
        lambda: cli("generate", "--url", double.url, "--out", str(tmp_path / "x"))
    )
    assert plain.returncode == 3
    assert "none installed" in plain.stderr


def _model(name: str, base: str) -> ModelConfig:
    return ModelConfig(key=f"key-{name}", name=name, base=base, type="main", hash="h")


@pytest.mark.parametrize(
    ("models", "chosen"),
    [
        ([("tiny-sd1", "sd-1"), ("tiny-sdxl", "sdxl")], "tiny-sdxl"),   # SDXL first
        ([("b-flux", "flux"), ("z-sd2", "sd-2"), ("a-sd1", "sd-1")], "a-sd1"),
        ([("Zeta", "sdxl"), ("alpha", "sdxl")], "alpha"),               # then by name
    ],
)
def test_or_demo_picks_the_first_main_model_by_base_then_name(
    models: list[tuple[str, str]], chosen: str
) -> None:
    assert demo_model([_model(name, base) for name, base in models]).name == chosen


@pytest.mark.real
def test_the_main_job_on_a_server_with_several_models_says_which_it_used(
    real_server: Peer, real_models: dict[str, ModelConfig], tmp_path: Path
) -> None:
    """``bash scripts/main.sh http://host`` is ``generate --or-demo`` without ``--model``."""
    done = cli("generate", "--or-demo", "--url", real_server.url, "--seeds", "1", "--width",
               "64", "--height", "64", "--steps", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert re.search(r"using '[^']+' \(sdxl\), the first of \d+ main models; --model",
                     done.stderr), done.stderr
    assert len(pngs(tmp_path)) == 1
    by_base = cli("generate", "--url", real_server.url, "--model", "sd-1", "--seeds", "1",
                  "--width", "64", "--height", "64", "--steps", "1", "--out",
                  str(tmp_path / "sd1"))
    assert by_base.returncode == 0, by_base.stderr
    assert "tiny-sd1 (sd-1)" in by_base.stderr
