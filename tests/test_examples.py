"""Every script in examples/ runs against the real InvokeAI and does what it says.

Each runs in a child process in a fresh folder (``python examples/<name>.py <url>``); its
output and the images it saved are checked, so an example that rots fails here.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from invokeai_client.workflows import examples

from .conftest import Peer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(
    name: str, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("INVOKEAI_") or k == "INVOKEAI_CLIENT_CACHE"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True, text=True, cwd=cwd, env={**base, **(env or {})}, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.tobytes()


def blank_image_node() -> str:
    text = examples.path("noise-sweep").read_text()
    match = re.search(r'"id": "([0-9a-f-]{36})",\s*"type": "blank_image"', text)
    assert match is not None
    return match.group(1)


def test_every_example_is_tested() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    tests = [name for name in globals() if name.startswith("test_")]
    untested = [s for s in scripts if not any(name.startswith(f"test_{s}") for name in tests)]
    assert scripts
    assert untested == []


def test_quickstart_saves_the_image_at_the_size_it_set(real_server: Peer, tmp_path: Path) -> None:
    done = run_example("quickstart", tmp_path, real_server.url)
    path = tmp_path / "outputs" / "examples" / "quickstart.png"
    assert size_of(path) == (160, 120)
    assert re.search(r"completed: \S*quickstart\.png \(160x120\)", done.stdout)
    assert "input 3: 'Seed' (IntegerField) = 1" in done.stdout


def test_quickstart_takes_the_url_from_the_environment(real_server: Peer, tmp_path: Path) -> None:
    run_example("quickstart", tmp_path, env={"INVOKEAI_URL": real_server.url})
    assert size_of(tmp_path / "outputs" / "examples" / "quickstart.png") == (160, 120)


def test_quickstart_without_a_url_starts_a_local_invokeai(tmp_path: Path) -> None:
    done = run_example("quickstart", tmp_path)
    assert "starting a local InvokeAI" in done.stderr
    assert size_of(tmp_path / "outputs" / "examples" / "quickstart.png") == (160, 120)


def test_sweep_saves_every_combination_once_with_progress(
    real_server: Peer, tmp_path: Path
) -> None:
    done = run_example("sweep", tmp_path, real_server.url)
    folder = tmp_path / "outputs" / "examples"
    names = sorted(p.name for p in folder.glob("sweep-*.png"))
    assert names == sorted(
        f"sweep-seed{s}-radius{r}.png" for s in (1, 2, 3) for r in (0, 3)
    )
    assert all(size_of(folder / n) == (96, 72) for n in names)
    assert pixels(folder / "sweep-seed1-radius0.png") != pixels(folder / "sweep-seed2-radius0.png")
    assert pixels(folder / "sweep-seed1-radius0.png") != pixels(folder / "sweep-seed1-radius3.png")
    assert len(re.findall(r"^seed=\d radius=\d -> ", done.stdout, re.M)) == 6
    assert "6 items in one request" in done.stdout
    assert "progress: 6/6 done" in done.stderr


def test_many_runs_each_get_their_own_result_within_max_concurrency(
    real_server: Peer, tmp_path: Path
) -> None:
    done = run_example("many_runs", tmp_path, real_server.url)
    rows = re.findall(r"^seed=(\d+) width=(\d+) image=(\S+) size=(\d+)x(\d+)$", done.stdout, re.M)
    assert sorted(int(seed) for seed, *_ in rows) == list(range(20))
    for seed, width, _, got_width, got_height in rows:
        assert int(width) == int(got_width) == 40 + int(seed)  # none crossed
        assert got_height == "72"
    assert len({image for _, _, image, _, _ in rows}) == 20
    peak = re.search(r"at most (\d+) in flight \(max_concurrency=4\)", done.stdout)
    assert peak is not None
    assert 1 <= int(peak.group(1)) <= 4


def test_web_service_renders_on_request_and_refuses_bad_input(
    real_server: Peer, tmp_path: Path
) -> None:
    done = run_example("web_service", tmp_path, real_server.url)
    folder = tmp_path / "outputs" / "examples"
    for seed in ("1", "2", "3"):
        assert f"GET /render?seed={seed} -> 200 image/png" in done.stdout
        assert size_of(folder / f"web-seed{seed}.png") == (96, 72)
    assert "GET /render?seed=-1 -> 400: input 'Seed'" in done.stdout
    assert "-1 is below the minimum 0" in done.stdout
    assert "GET /render?seed=abc -> 400" in done.stdout
    assert not (folder / "web-seed-1.png").exists()


def test_fastapi_app_streams_a_run_and_serves_its_image(real_server: Peer) -> None:
    """examples/fastapi_app.py under uvicorn: POST /generate, the SSE stream to the result,
    the image it names; a bad seed is a 422 (the browser test is tests/test_web.py)."""
    import asyncio
    import json

    import aiohttp

    from .webapp import fastapi_app

    async def scenario() -> tuple[list[str], dict[str, object], bytes, int]:
        async with fastapi_app(real_server.url) as base, aiohttp.ClientSession(base) as http:
            async with http.post("/generate", json={"seed": 9, "width": 64}) as answer:
                run = await answer.json()
            kinds, result = [], {}
            async with http.get(run["events"]) as stream:
                kind = ""
                async for raw in stream.content:
                    line = raw.decode().strip()
                    if line.startswith("event: "):
                        kind = line[len("event: "):]
                        kinds.append(kind)
                    elif line.startswith("data: ") and kind == "result":
                        result = json.loads(line[len("data: "):])
            async with http.get(result["images"][0]["url"]) as answer:  # type: ignore[index]
                png = await answer.read()
            async with http.post("/generate", json={"seed": -1}) as answer:
                refused = answer.status
        return kinds, result, png, refused

    kinds, result, png, refused = asyncio.run(scenario())
    assert kinds[-1] == "result"
    assert {"status", "node_started", "node_completed"} <= set(kinds)
    assert result["status"] == "completed"
    assert result["field_values"] == {}
    assert Image.open(io.BytesIO(png)).size == (64, 120)
    assert refused == 422


def test_error_handling_shows_each_error_with_what_it_carries(
    real_server: Peer, tmp_path: Path
) -> None:
    done = run_example("error_handling", tmp_path, real_server.url)
    out = done.stdout
    assert "rule='>= 0'" in out
    assert "-1 is below the minimum 0" in out
    assert "ValidationError input=Sede rule='known input'" in out
    assert "Did you mean 'Seed'?" in out
    failed = re.search(r"RunFailedError item=(\d+) node=(\S+) \(Canvas\) error_type=ValueError "
                       r"message='Width and height must be >= 0'", out)
    assert failed is not None
    assert failed.group(2) == blank_image_node()
    assert "batch item width=64: completed" in out
    assert "batch item width=-1: failed (ValueError)" in out
    assert "batch item width=32: completed" in out
    assert "ConnectionError (an InvokeAIError: True): cannot open the event stream" in out


def test_sync_script_runs_a_workflow_and_a_sweep_without_async(
    real_server: Peer, tmp_path: Path
) -> None:
    done = run_example("sync_script", tmp_path, real_server.url)
    folder = tmp_path / "outputs" / "examples"
    assert size_of(folder / "sync.png") == (128, 96)
    assert sorted(p.name for p in folder.glob("sync-seed*.png")) == [
        "sync-seed1.png", "sync-seed2.png", "sync-seed3.png"
    ]
    assert re.search(r"completed: \S*sync\.png \(128x96\)", done.stdout)
    assert "3 of 3 completed" in done.stdout
    assert re.search(r"^\d+ boards on the server$", done.stdout, re.M)
    assert "RunFailedError node=d error_type=ZeroDivisionError" in done.stdout


def test_readme_quick_start_runs_as_written(real_server: Peer, tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", 10)]
    assert "http://127.0.0.1:9090" in code
    script = tmp_path / "quick_start.py"
    script.write_text(code.replace("http://127.0.0.1:9090", real_server.url))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = sorted((tmp_path / "outputs").glob("*.png"))
    assert len(saved) == 7  # one run, then a sweep of 3 x 2
    assert all(size_of(p) == (96, 72) for p in saved)
