"""``invokeai-client generate`` (what ``bash scripts/main.sh`` runs): text to image over seeds
with the server's main model, the tiny random-weight ones on a local server, and the
model-free demo when a server has no main model."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from invokeai_client.cli.generate import demo_model, parse_seeds
from invokeai_client.types.model_configs import ModelConfig

from .conftest import Peer
from .test_cli import cli, pngs, size_of


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
