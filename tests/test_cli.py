"""``invokeai-client``: the main job end to end against the real InvokeAI, and its errors.

The command runs in a child process (``python -m invokeai_client.cli``), as a user runs it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from invokeai_client import AsyncClient, __version__
from invokeai_client.cli import build_parser, main
from invokeai_client.cli._console import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_ITEMS_FAILED,
    EXIT_PIPE_CLOSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Console,
)
from invokeai_client.cli._plan import make_plan
from invokeai_client.cli._run import run_batch
from invokeai_client.testing.local import free_port
from invokeai_client.workflows import examples

from .conftest import ADMIN, SEED_WORKFLOWS, Peer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli_env() -> dict[str, str]:
    """The environment without INVOKEAI_* settings (the cache location is kept)."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith("INVOKEAI_") or k == "INVOKEAI_CLIENT_CACHE"
    }


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invokeai_client.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=timeout,
    )


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "results.json").read_text())
    return data


# -- the main job against the real server ------------------------------------------------


def test_a_sweep_saves_one_png_per_item_with_the_swept_size(
    real_server: Peer, tmp_path: Path
) -> None:
    out = tmp_path / "renders"
    done = cli(
        "run", "--url", real_server.url, "--out", str(out),
        "--sweep", "Seed=1,2,3", "--sweep", "Output width=40,56", "--set", "Output height=30",
    )
    assert done.returncode == 0, done.stderr
    files = pngs(out)
    assert len(files) == 6
    assert sorted(done.stdout.split()) == [str(p) for p in files]  # stdout: the paths
    items = manifest(out)["items"]
    assert [(i["values"]["Seed"], i["values"]["Output width"]) for i in items] == [
        (1, 40), (1, 56), (2, 40), (2, 56), (3, 40), (3, 56),
    ]
    for item in items:
        assert item["status"] == "completed"
        (path,) = item["files"]
        assert Path(path).read_bytes().startswith(PNG_MAGIC)
        assert size_of(Path(path)) == (item["values"]["Output width"], 30)
    # The seed changes the picture; the same seed at the same size gives the same one.
    by_values = {(i["values"]["Seed"], i["values"]["Output width"]): i for i in items}
    first = Path(by_values[(1, 40)]["files"][0])
    assert Image.open(first).tobytes() != Image.open(by_values[(2, 40)]["files"][0]).tobytes()
    assert "6 items: 6 completed, 0 failed, 0 canceled" in done.stderr
    assert "[6/6]" in done.stderr  # a progress line per finished item off a terminal
    assert "\x1b[" not in done.stderr  # no terminal codes when stderr is not a terminal


def test_the_demo_defaults_and_runs_repeat_the_sweep(real_server: Peer, tmp_path: Path) -> None:
    done = cli("run", "--url", real_server.url, "--runs", "2", "--sweep", "Seed=7",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "outputs").iterdir()  # ./outputs/<timestamp>/
    files = pngs(folder)
    assert len(files) == 2
    assert [size_of(p) for p in files] == [(96, 72), (96, 72)]
    assert Image.open(files[0]).tobytes() == Image.open(files[1]).tobytes()


@pytest.mark.anyio
async def test_images_go_to_the_board_named_created_when_asked(
    real_server: Peer, tmp_path: Path
) -> None:
    name = f"cli-board-{time.monotonic_ns()}"
    args = ["run", "--url", real_server.url, "--out", str(tmp_path), "--sweep", "Seed=1,2"]
    refused = await anyio.run_process(
        [sys.executable, "-m", "invokeai_client.cli", *args, "--board", name],
        env=cli_env(), check=False,
    )
    assert refused.returncode == EXIT_INPUT
    assert f"board {name!r} not found" in refused.stderr.decode()
    assert "--create-board" in refused.stderr.decode()
    done = await anyio.run_process(
        [sys.executable, "-m", "invokeai_client.cli", *args, "--board", name, "--create-board"],
        env=cli_env(), check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    async with AsyncClient(real_server.url) as client:
        board = await client.boards.resolve_board(name)
        on_board = {image.image_name async for image in client.images.list(board=board)}
        await client.boards.delete(board, delete_images=True)
    assert set(image for item in manifest(tmp_path)["items"] for image in item["images"]) == (
        on_board
    )
    assert len(on_board) == 2


def test_ctrl_c_cancels_the_batch_on_the_server(real_server: Peer, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "invokeai_client.cli", "run", "--url", real_server.url,
         "--out", str(tmp_path), "--sweep", "Seed=1..400", "--set", "Canvas width=768",
         "--set", "Canvas height=768", "--set", "Blur radius=12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the first saved image: the batch is running
        assert first.strip().endswith(".png")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "canceling the batch on the server" in err
    data = manifest(tmp_path)
    statuses = [item["status"] for item in data["items"]]
    assert statuses.count("canceled") > 0
    assert set(statuses) <= {"completed", "canceled"}

    async def batch_status() -> Any:
        async with AsyncClient(real_server.url) as client:
            return await client.queue.batch_status(data["batch_id"])

    counts = anyio.run(batch_status)
    assert counts.pending == counts.in_progress == 0
    assert counts.canceled == statuses.count("canceled")
    assert counts.completed == statuses.count("completed")


def test_inputs_lists_labels_types_and_values(real_server: Peer) -> None:
    offline = cli("inputs")
    assert offline.returncode == 0, offline.stderr
    assert "Seed" in offline.stdout
    assert "integer >= 0" in offline.stdout
    online = cli("inputs", "--url", real_server.url, "--workflow",
                 str(examples.path("arithmetic-form")))
    assert online.returncode == 0, online.stderr
    assert "Operation" in online.stdout
    assert "'MUL'" in online.stdout


# -- the default path: no URL, a local InvokeAI of its own --------------------------------


def test_without_a_url_it_starts_and_stops_its_own_invokeai(tmp_path: Path) -> None:
    done = cli("run", "--out", str(tmp_path), "--sweep", "Seed=3,4", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "starting a local InvokeAI" in done.stderr
    assert [size_of(p) for p in pngs(tmp_path)] == [(96, 72), (96, 72)]
    url = next(
        word for line in done.stderr.splitlines() if "ready at" in line
        for word in line.split() if word.startswith("http://")
    )
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/api/v1/app/version", timeout=5)


# -- errors: one line, one exit code per kind ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep", "Sed=1,2"], "has no input 'Sed'; did you mean 'Seed'? (its inputs: "
         "'Canvas width', 'Canvas height', 'Color', 'Seed'"),
        (["--sweep", "Seed=1,x"], "--sweep Seed=1,x: input 'Seed'"),
        (["--sweep", "Seed=1,-2"], "-2 is below the minimum 0"),
        (["--sweep", "Seed=1..9999999"], "at most 100000"),
        (["--sweep", "Color=#ff0000,#00ff00"], "'Color' is a color input, which InvokeAI "
         "cannot vary in a batch"),
        (["--sweep", "Seed"], "expected 'Input Label=value'"),
        (["--set", "Amount=2"], "2.0 is above the maximum 1"),
        (["--runs", "0"], "--runs 0: must be 1 or more"),
        (["--workflow", "/nonexistent/flow.json"], "--workflow /nonexistent/flow.json: cannot "
         "read workflow file"),
        (["--create-board"], "--create-board needs --board"),
    ],
)
def test_bad_input_is_one_clear_line_before_any_server_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No --url: a server would be started if the input got that far.
    assert main(["run", *args]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert "starting a local InvokeAI" not in err


def test_a_bad_workflow_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flow.json"
    path.write_text("{not json")
    assert main(["run", "--workflow", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"error: --workflow {path}: ")
    assert "malformed" in err


def test_an_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["run", "--url", url]) == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach an InvokeAI server at {url}")
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2_and_version_prints_the_version() -> None:
    wrong = cli("run", "--no-such-option")
    assert wrong.returncode == EXIT_USAGE
    assert "unrecognized arguments: --no-such-option" in wrong.stderr
    version = cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"invokeai-client {__version__}"


def test_inputs_honours_invokeai_url(real_server: Peer) -> None:
    env = {**cli_env(), "INVOKEAI_URL": real_server.url}
    online = subprocess.run(
        [sys.executable, "-m", "invokeai_client.cli", "inputs"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert online.returncode == 0, online.stderr
    assert "types from InvokeAI 6.14.2" in online.stdout  # the server's schemas, not bundled
    env["INVOKEAI_URL"] = f"http://127.0.0.1:{free_port()}"
    unreachable = subprocess.run(
        [sys.executable, "-m", "invokeai_client.cli", "inputs"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert unreachable.returncode == EXIT_UNREACHABLE
    assert unreachable.stderr.startswith("error: cannot reach")


@pytest.mark.anyio
async def test_multi_user_servers_take_email_and_password(
    multiuser_double: Peer, tmp_path: Path
) -> None:
    base = [sys.executable, "-m", "invokeai_client.cli", "run", "--url", multiuser_double.url,
            "--workflow", str(examples.path("image-pipeline")), "--out", str(tmp_path),
            "--sweep", "Output width=16,24"]
    anonymous = await anyio.run_process(base, env=cli_env(), check=False)
    assert anonymous.returncode == EXIT_INPUT
    assert "--token or --email/--password" in anonymous.stderr.decode()
    env = {**cli_env(), "INVOKEAI_PASSWORD": ADMIN[1]}
    done = await anyio.run_process([*base, "--email", ADMIN[0]], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert [size_of(p)[0] for p in pngs(tmp_path)] == [16, 24]
    # The environment alone logs in, as it does for AsyncClient().
    env = {**cli_env(), "INVOKEAI_EMAIL": ADMIN[0], "INVOKEAI_PASSWORD": ADMIN[1]}
    done = await anyio.run_process(
        [*base[:-4], "--out", str(tmp_path / "env"), "--sweep", "Output width=8"],
        env=env, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert [size_of(p)[0] for p in pngs(tmp_path / "env")] == [8]


@pytest.mark.anyio
async def test_credentials_in_the_environment_do_not_block_a_single_user_server(
    double: Peer, tmp_path: Path
) -> None:
    """A shell set up for a team's multi-user server still runs against a local one: the
    environment's credentials are used where the server has accounts, ignored elsewhere."""
    env = {**cli_env(), "INVOKEAI_EMAIL": ADMIN[0], "INVOKEAI_PASSWORD": ADMIN[1]}
    done = await anyio.run_process(
        [sys.executable, "-m", "invokeai_client.cli", "run", "--url", double.url,
         "--workflow", str(examples.path("image-pipeline")), "--out", str(tmp_path),
         "--sweep", "Output width=16"],
        env=env, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert [size_of(p)[0] for p in pngs(tmp_path)] == [16]


@pytest.mark.anyio
async def test_a_local_image_is_uploaded_for_the_run_and_deleted_after(
    real_server: Peer, tmp_path: Path
) -> None:
    Image.new("RGB", (80, 60), (10, 200, 30)).save(tmp_path / "in.png")
    async with AsyncClient(real_server.url) as client:
        before = {i.image_name async for i in client.images.list(intermediate=None)}
        done = await anyio.run_process(
            [sys.executable, "-m", "invokeai_client.cli", "run", "--url", real_server.url,
             "--workflow", str(examples.path("image-input")), "--set", "Image=./in.png",
             "--sweep", "Scale Factor=0.5,0.25", "--out", "out"],
            cwd=tmp_path, env=cli_env(), check=False,
        )
        new = [i async for i in client.images.list(intermediate=None)
               if i.image_name not in before]
    assert done.returncode == 0, done.stderr.decode()
    assert [size_of(p) for p in pngs(tmp_path / "out")] == [(40, 30), (20, 15)]
    # Only what the runs made is new: the uploaded input ("user" category) is gone again.
    assert [i.image_category for i in new] == ["general"] * len(new)
    assert len(new) >= 2


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.anyio
@pytest.mark.parametrize("width", [100, 34])
async def test_on_a_terminal_rich_progress_fits_and_paths_stay_clean(
    double: Peer, tmp_path: Path, width: int
) -> None:
    args = build_parser().parse_args(
        ["run", "--url", double.url, "--out", str(tmp_path), "--sweep", "Seed=1..5"]
    )
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err, live=True, width=width)
    code = await run_batch(make_plan(args), double.url, {}, console)
    assert code == 0
    assert sorted(out.getvalue().split()) == [str(p) for p in pngs(tmp_path)]  # no codes
    assert len(pngs(tmp_path)) == 5
    stderr = err.getvalue()
    assert "\x1b[" in stderr  # drawn in place by rich
    screen = [ANSI.sub("", line) for line in re.split(r"[\r\n]", stderr)]  # each redraw
    assert any("5/5" in line for line in screen)
    assert any("ETA" in line for line in screen)
    assert "[1/5]" not in stderr  # no per-item lines on a terminal
    assert "5 items: 5 completed, 0 failed, 0 canceled" in stderr
    # The live display is never wider than the terminal, so it never wraps into stale
    # copies (notes above it are plain lines the terminal may wrap).
    drawn = [line for line in screen if "ETA" in line]
    assert drawn
    rate = any("/s" in line or "/min" in line for line in drawn)
    assert rate is (width >= 60)  # the rate column only where it fits
    assert max(len(line) for line in drawn) <= width


def test_json_lines_and_failed_items_exit_5(real_server: Peer, tmp_path: Path) -> None:
    done = cli("run", "--url", real_server.url, "--out", str(tmp_path), "--json",
               "--sweep", "Canvas width=48,-1,32", "--set", "Output width=20")
    assert done.returncode == EXIT_ITEMS_FAILED, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    items, summary = lines[:-1], lines[-1]
    assert [line["type"] for line in items] == ["item"] * 3
    assert sorted(item["values"]["Canvas width"] for item in items) == [-1, 32, 48]
    failed = [item for item in items if item["status"] == "failed"]
    assert [item["values"]["Canvas width"] for item in failed] == [-1]
    assert failed[0]["error"]["type"]
    for item in items:
        if item["status"] == "completed":
            (path,) = item["files"]
            assert size_of(Path(path))[0] == 20
    assert summary["type"] == "summary"
    assert (summary["total"], summary["completed"], summary["failed"]) == (3, 2, 1)
    assert summary["exit_code"] == EXIT_ITEMS_FAILED
    assert json.loads(Path(summary["results"]).read_text())["items"][0]["index"] == 0


def test_a_closed_pipe_exits_quietly_and_still_writes_results(
    real_server: Peer, tmp_path: Path
) -> None:
    first, code, err = head_1(["run", "--url", real_server.url, "--out", str(tmp_path),
                               "--sweep", "Seed=1..60", "--set", "Canvas width=256"], tmp_path)
    assert first.endswith(".png")
    assert code == EXIT_PIPE_CLOSED
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert "stdout was closed" in err
    items = manifest(tmp_path)["items"]
    assert len(items) == 60
    assert {item["status"] for item in items} <= {"completed", "canceled"}


def head_1(args: list[str], tmp_path: Path) -> tuple[str, int, str]:
    """``invokeai-client ARGS | head -1`` in bash: the first line, the command's exit code
    (pipefail) and its stderr."""
    command = shlex.join([sys.executable, "-m", "invokeai_client.cli", *args])
    script = f'set -o pipefail; {command} 2>{tmp_path}/err.txt | head -1; echo "$?"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env=cli_env(), timeout=600)
    first, code = done.stdout.splitlines()
    return first, int(code), (tmp_path / "err.txt").read_text()


def test_gui_exports_are_checked_for_inputs_and_models(real_server: Peer) -> None:
    if not SEED_WORKFLOWS.is_dir():
        pytest.skip("the seed workflows are not present (../shared/fixtures/seed-workflows)")
    missing_input = cli("run", "--url", real_server.url,
                        "--workflow", str(SEED_WORKFLOWS / "copy-image.json"))
    assert missing_input.returncode == EXIT_INPUT
    assert "needs a value or a connection for 'image'" in missing_input.stderr
    # The real test server has no models installed: model sync names what is missing.
    missing_model = cli("run", "--url", real_server.url,
                        "--workflow", str(SEED_WORKFLOWS / "sdxl-text-to-image.json"))
    assert missing_model.returncode == EXIT_INPUT
    errors = [line for line in missing_model.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "match no model on the server" in errors[0]
    assert "juggernautXL" in errors[0]
