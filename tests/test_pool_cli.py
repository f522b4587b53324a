"""``invokeai-client batch``: a durable job over several servers; killed and resumed."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from invokeai_client import AsyncClient
from invokeai_client.cli._console import EXIT_INPUT, EXIT_PIPE_CLOSED, EXIT_UNREACHABLE
from invokeai_client.pool import Manifest
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.workflows import examples

from .conftest import wait_until
from .helpers import tmpfs
from .test_cli import cli_env, pngs

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "invokeai_client.cli", "batch"]


async def completed_seeds(*servers: InvokeAIDouble) -> Counter[int]:
    """How often each Seed value completed, over every server's queue."""
    seen: Counter[int] = Counter()
    for server in servers:
        async with AsyncClient(server.url) as client:
            for item in await client.queue.get_summaries(await client.queue.item_ids()):
                if item.status == "completed":
                    values = {fv.field_name: fv.value for fv in item.field_values or ()}
                    seen[values["seed"]] += 1
    return seen


async def test_a_job_killed_midway_resumes_without_rerunning_or_losing_anything(
    tmp_path: Path,
) -> None:
    async with InvokeAIDouble() as one, InvokeAIDouble() as two:
        one.queue.faults.node_delay = 0.01
        two.queue.faults.node_delay = 0.02
        out = tmp_path / "renders"
        args = [*CLI, str(examples.path("noise-sweep")), "--sweep", "Seed=1..120",
                "--server", one.url, "--server", two.url, "--out", str(out)]
        process = await asyncio.create_subprocess_exec(
            *args, env=cli_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        manifest = None
        deadline = asyncio.get_running_loop().time() + 180  # a guard on a loaded machine
        while asyncio.get_running_loop().time() < deadline:  # a good part done: kill -9
            await asyncio.sleep(0.05)
            if (out / "job.sqlite").exists():
                manifest = manifest or await Manifest.open(out / "job.sqlite")
                if (await manifest.counts()).get("completed", 0) >= 40:
                    break
        # Both servers hold still (the job cannot end meanwhile); a second run of the same
        # job is refused before anything is sent: a --resume, and a fresh run into --out.
        for server in (one, two):
            server.queue.paused = True
        for extra in (["--resume"], []):
            busy = await anyio.run_process([*args, *extra], env=cli_env(), check=False)
            assert busy.returncode == EXIT_INPUT, busy.stderr.decode()
            assert "in use by another run" in busy.stderr.decode()
            assert str(out) in busy.stderr.decode()
            assert "Traceback" not in busy.stderr.decode()
        assert process.returncode is None  # the first run was not disturbed
        process.send_signal(signal.SIGKILL)
        await process.wait()
        for server in (one, two):
            server.queue.paused = False
            server.queue.wake()
        assert manifest is not None
        before = await manifest.counts()
        await manifest.close()
        assert before.get("completed", 0) >= 40
        assert before.get("completed", 0) < 120, "killed too late to test resume"
        listed_before = len(listing(out))
        with open(out / "results.jsonl", "ab") as log:  # as if killed in the middle of a line
            log.write(b'{"index": 3, "item_id": 4, "sta')
        again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
        assert again.returncode == 0, again.stderr.decode()
        # Every variation completed exactly once on the servers: none re-run, none lost,
        # none sent by the refused runs.
        assert await completed_seeds(one, two) == Counter(range(1, 121))
        assert len(pngs(out)) == 120
        lines = again.stdout.decode().split()
        assert len(lines) == 120
        assert "resuming" in again.stderr.decode()
        # results.jsonl: what the killed run listed, then what the resume listed; each
        # variation once, named by the sweep's label, with its file and server.
        entries = listing(out)
        assert listed_before <= 120
        assert sorted(e["index"] for e in entries) == list(range(120))
        for entry in entries:
            assert entry["values"] == {"Seed": entry["index"] + 1}
            assert entry["status"] == "completed"
            assert entry["server"] in (one.url, two.url)
            (name,) = entry["files"]
            assert (out / name).read_bytes().startswith(b"\x89PNG")


def listing(out: Path) -> list[dict[str, Any]]:
    """The entries of ``OUT/results.jsonl``, one a line (every line complete)."""
    text = (out / "results.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def test_a_closed_stdout_stops_the_job_with_141_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    """``batch ... | head -1``: the reader goes away, the command stops (exit 141, one line
    on stderr, no traceback), leaving the job to --resume; the resume lists the rest."""
    import os

    async with InvokeAIDouble() as server:
        server.queue.faults.node_delay = 0.005
        out = tmp_path / "renders"
        args = [*CLI, str(examples.path("noise-sweep")), "--sweep", "Seed=1..60",
                "--server", server.url, "--out", str(out), "--json"]
        read_end, write_end = os.pipe()
        process = await asyncio.create_subprocess_exec(
            *args, env=cli_env(), stdout=write_end, stderr=asyncio.subprocess.PIPE,
        )
        os.close(write_end)
        # Once an item completed the server holds still: the job cannot end (and write all
        # its lines into the pipe) before the reader has gone, however slow the machine.
        await wait_until(lambda: any(item.status == "completed"
                                     for item in server.queue.items.values()), timeout=300)
        server.queue.paused = True
        with open(read_end, "rb") as reader, anyio.fail_after(300):  # a hang guard
            first = json.loads(await anyio.to_thread.run_sync(reader.readline))
        server.queue.paused = False
        server.queue.wake()
        with anyio.fail_after(300):
            _, err = await process.communicate()
        assert process.returncode == EXIT_PIPE_CLOSED, err.decode()
        assert "stdout was closed" in err.decode()
        assert "--resume" in err.decode()
        assert "Traceback" not in err.decode()
        assert first["type"] == "item"
        assert first["index"] in {e["index"] for e in listing(out)}
        assert len(listing(out)) < 60
        again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
        assert again.returncode == 0, again.stderr.decode()
        entries = listing(out)
        assert sorted(e["index"] for e in entries) == list(range(60))
        assert await completed_seeds(server) == Counter(range(1, 61))
        # --json: each variation of the job (earlier ones first), then the summary.
        lines = [json.loads(line) for line in again.stdout.decode().splitlines()]
        assert [line["type"] for line in lines] == ["item"] * 60 + ["summary"]
        assert lines[-1]["completed"] == 60
        assert lines[-1]["exit_code"] == 0
        by_index = {e["index"]: e for e in entries}
        for line in lines[:-1]:
            assert [Path(p).name for p in line["files"]] == by_index[line["index"]]["files"]
            assert Path(line["files"][0]).is_file()


async def test_csv_and_jsonl_give_one_variation_per_row(tmp_path: Path) -> None:
    async with InvokeAIDouble() as server:
        rows = [{"Seed": str(seed), "Blur radius": str(seed % 3)} for seed in range(5)]
        # As Excel's "CSV UTF-8" saves it: a byte order mark first, CRLF line ends.
        with open(tmp_path / "v.csv", "w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.DictWriter(handle, fieldnames=["Seed", "Blur radius"])
            writer.writeheader()
            writer.writerows(rows)
        (tmp_path / "v.jsonl").write_text(
            "\n".join(json.dumps({"Seed": 10 + n}) for n in range(3)) + "\n",
            encoding="utf-8-sig",
        )
        base = [*CLI, str(examples.path("noise-sweep")), "--server", server.url]
        by_csv = await anyio.run_process(
            [*base, "--csv", str(tmp_path / "v.csv"), "--out", str(tmp_path / "a")],
            env=cli_env(), check=False,
        )
        assert by_csv.returncode == 0, by_csv.stderr.decode()
        # The listing names each row's inputs as the CSV header does, with the row's file.
        entries = sorted(listing(tmp_path / "a"), key=lambda e: e["index"])
        assert [e["values"] for e in entries] == [
            {"Seed": int(row["Seed"]), "Blur radius": float(row["Blur radius"])} for row in rows
        ]
        assert [e["files"] for e in entries] == [[f"{n:06d}.png"] for n in range(5)]
        by_jsonl = await anyio.run_process(
            [*base, "--jsonl", str(tmp_path / "v.jsonl"), "--out", str(tmp_path / "b"),
             "--no-workflow-json"], env=cli_env(), check=False,
        )
        assert by_jsonl.returncode == 0, by_jsonl.stderr.decode()
        assert len(pngs(tmp_path / "a")) == 5
        assert len(pngs(tmp_path / "b")) == 3
        assert await completed_seeds(server) == Counter([0, 1, 2, 3, 4, 10, 11, 12])
        # Without --resume an existing job is never overwritten.
        refused = await anyio.run_process(
            [*base, "--jsonl", str(tmp_path / "v.jsonl"), "--out", str(tmp_path / "b")],
            env=cli_env(), check=False,
        )
        assert refused.returncode == EXIT_INPUT
        assert "--resume" in refused.stderr.decode()
        # --resume with other variations than the job's is refused naming them; with the
        # same ones, or none, it continues the job (here: finished, nothing to send).
        (tmp_path / "w.jsonl").write_text('{"Seed": 99}\n')
        before = await completed_seeds(server)
        for extra, differ in ((["--jsonl", str(tmp_path / "w.jsonl")], "--jsonl"),
                              (["--sweep", "Seed=500..510"], "--sweep")):
            other = await anyio.run_process([*base, *extra, "--out", str(tmp_path / "b"),
                                             "--resume"], env=cli_env(), check=False)
            assert other.returncode == EXIT_INPUT, other.stderr.decode()
            assert differ in other.stderr.decode()
        for extra in (["--jsonl", str(tmp_path / "v.jsonl")], []):
            same = await anyio.run_process([*base, *extra, "--out", str(tmp_path / "b"),
                                            "--resume"], env=cli_env(), check=False)
            assert same.returncode == 0, same.stderr.decode()
        assert await completed_seeds(server) == before


BAD_FILES = [  # (option, file name, content or None for a folder, words the error must hold)
    ("--csv", "missing.csv", None, ["missing.csv", "cannot read"]),
    ("--csv", "folder.csv", "DIR", ["folder.csv", "cannot read"]),
    ("--csv", "latin1.csv", b"Seed\n\xff\xfe\n", ["latin1.csv", "UTF-8"]),
    ("--csv", "short.csv", b"Seed,Blur radius\n1,2\n3\n", ["short.csv line 3", "Blur radius"]),
    ("--jsonl", "array.jsonl", b"[1, 2]\n", ["array.jsonl line 1", "JSON object"]),
    ("--jsonl", "mixed.jsonl", b'{"Seed": 1}\n7\n', ["mixed.jsonl line 2", "JSON object"]),
]


async def test_bad_variation_files_and_out_folders_are_input_errors(tmp_path: Path) -> None:
    """Each is refused with exit code 3 and a message naming the file and the rule, no
    traceback, and no job left behind in --out."""
    async with InvokeAIDouble() as server:
        base = [*CLI, str(examples.path("noise-sweep")), "--server", server.url]
        cases: list[tuple[list[str], list[str]]] = []
        for option, name, content, words in BAD_FILES:
            path = tmp_path / name
            if content == "DIR":
                path.mkdir()
            elif isinstance(content, bytes):
                path.write_bytes(content)
            cases.append(([option, str(path), "--out", str(tmp_path / f"out-{name}")], words))
        (tmp_path / "a-file").write_text("not a folder")
        cases.append((["--sweep", "Seed=1", "--out", str(tmp_path / "a-file")],
                      ["a-file", "not a folder"]))
        cases.append((["--sweep", "Seed=1", "--board", "nowhere-board", "--out",
                       str(tmp_path / "out-board")], ["--board", "nowhere-board"]))
        for extra, words in cases:
            done = await anyio.run_process([*base, *extra], env=cli_env(), check=False)
            err = done.stderr.decode()
            assert done.returncode == EXIT_INPUT, (extra, err)
            assert "Traceback" not in err, err
            for word in words:
                assert word in err, (extra, err)
        assert not list(tmp_path.glob("out-*/job.sqlite"))
        async with AsyncClient(server.url) as client:
            assert await client.queue.item_ids() == []  # nothing was sent


async def test_resume_after_a_crash_between_saving_and_recording_an_image(tmp_path: Path) -> None:
    """A crash after an image was saved but before the manifest said so: resume finds the
    item completed on the server and saves its image again over the job's own file (it hung
    at N-1 of N before: the save refused the existing file inside a task nobody awaited)."""
    import sqlite3

    async with InvokeAIDouble() as server:
        out = tmp_path / "renders"
        args = [*CLI, str(examples.path("noise-sweep")), "--sweep", "Seed=1..3",
                "--server", server.url, "--out", str(out)]
        first = await anyio.run_process(args, env=cli_env(), check=False)
        assert first.returncode == 0, first.stderr.decode()
        with closing(sqlite3.connect(out / "job.sqlite")) as db, db:  # the crash window, on disk
            db.execute("UPDATE variations SET status='sent', images=NULL, saved=NULL "
                       "WHERE idx=1")
        with anyio.fail_after(300):  # a hang guard; a loaded machine starts Python slowly
            again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
        assert again.returncode == 0, again.stderr.decode()
        assert len(pngs(out)) == 3
        assert await completed_seeds(server) == Counter([1, 2, 3])  # nothing ran again


UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


LOCAL_ERRORS = [  # (extra arguments, files to write, words the error must hold)
    (["--csv", "{tmp}/bad.csv"], {"bad.csv": "Seed,Blur radius\n1,x\n"}, ["bad.csv line 2"]),
    (["--csv", "{tmp}/wide.csv"], {"wide.csv": "Seed\n1,2\n"}, ["wide.csv line 2", "more cells"]),
    (["--csv", "{tmp}/twice.csv"], {"twice.csv": "Seed,seed\n1,2\n"}, ["twice.csv", "same input"]),
    (["--jsonl", "{tmp}/v.jsonl"], {"v.jsonl": '{"Nope": 1}\n'}, ["v.jsonl", "no input 'Nope'"]),
    (["--sweep", "Seed=1,x"], {}, ["--sweep Seed=1,x", "not an integer"]),
    (["--sweep", "Seed=1", "--sweep", "Seed=2"], {}, ["swept twice"]),
    (["--sweep", "Seed=1", "--set", "Blur radius=-3"], {}, ["--set Blur radius=-3"]),
    (["--sweep", "Seed=1", "--runs", "0"], {}, ["--runs 0"]),
    (["--sweep", "Seed=1", "--server", "localhost:9090"], {}, ["--server localhost:9090"]),
    (["--csv", "{tmp}/img.csv", "--set", "Scale Factor=2"], {"img.csv": "Image\n{tmp}/gone.png\n"},
     ["img.csv line 2", "gone.png"]),
]


@pytest.mark.parametrize(("extra", "files", "words"), LOCAL_ERRORS)
def test_local_input_errors_come_before_any_request(
    tmp_path: Path, extra: list[str], files: dict[str, str], words: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With an unreachable server, a bad local input is still exit 3 (input), not 4
    (unreachable): every local input is read and checked before a server is asked."""
    from invokeai_client.cli import main

    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("{tmp}", str(tmp_path)))
    workflow = "image-input" if "Image" in "".join(files.values()) else "noise-sweep"
    argv = ["batch", str(examples.path(workflow)), "--server", UNREACHABLE,
            "--out", str(tmp_path / "out"), *(a.format(tmp=tmp_path) for a in extra)]
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err
    assert "cannot reach" not in err
    assert not (tmp_path / "out" / "job.sqlite").exists()


def test_good_input_with_an_unreachable_server_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from invokeai_client.cli import main

    argv = ["batch", str(examples.path("noise-sweep")), "--server", UNREACHABLE,
            "--sweep", "Seed=1..3", "--out", str(tmp_path / "out")]
    assert main(argv) == EXIT_UNREACHABLE
    assert "no server of the pool answers" in capsys.readouterr().err
    # Nothing was recorded: the same command can simply be run again.
    assert not (tmp_path / "out" / "job.sqlite").exists()


@pytest.mark.parametrize(("argv", "words"), [
    (["generate", "--seeds", "1,x"], ["--seeds"]),
    (["generate", "--seeds", "5000000000"], ["--seeds"]),
    (["generate", "--width", "0"], ["--width 0"]),
    (["run", "--sweep", "Sed=1"], ["did you mean 'Seed'"]),
    (["inputs", "--workflow", "/nonexistent/flow.json"], ["/nonexistent/flow.json"]),
    (["run", "--workflow", str(examples.path("image-input")), "--set", "Image=/no/such.png"],
     ["--set Image=/no/such.png", "/no/such.png"]),
    (["run", "--workflow", str(examples.path("image-input")), "--set",
      f"Image={examples.path('image-input')}"], ["is not an image"]),
])
def test_every_command_checks_local_input_before_the_server(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from invokeai_client.cli import main

    assert main([*argv, "--url", UNREACHABLE]) == EXIT_INPUT
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("content", ["garbage", "foreign"])
def test_resume_of_a_file_that_is_not_a_job_is_named_and_left_alone(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from invokeai_client.cli import main

    out = tmp_path / "out"
    out.mkdir()
    manifest = out / "job.sqlite"
    if content == "garbage":
        manifest.write_bytes(b"not a database at all" * 100)
    else:
        with closing(sqlite3.connect(manifest)) as db, db:
            db.execute("CREATE TABLE notes (text TEXT)")
    before = manifest.read_bytes()
    argv = ["batch", str(examples.path("noise-sweep")), "--server", UNREACHABLE,
            "--out", str(out), "--resume"]
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "is not a job manifest" in err
    assert str(manifest) in err
    assert manifest.read_bytes() == before  # never changed


async def test_a_variation_listed_twice_runs_twice_and_says_so(tmp_path: Path) -> None:
    async with InvokeAIDouble() as server:
        (tmp_path / "v.csv").write_text("Seed\n1\n2\n1\n")
        done = await anyio.run_process(
            [*CLI, str(examples.path("noise-sweep")), "--server", server.url,
             "--csv", str(tmp_path / "v.csv"), "--out", str(tmp_path / "out")],
            env=cli_env(), check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        assert "1 variation repeats an earlier one" in done.stderr.decode()
        assert len(pngs(tmp_path / "out")) == 3  # one file per variation, none overwritten
        assert await completed_seeds(server) == Counter([1, 1, 2])


@pytest.fixture
def job_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs that the test may remount read-only (skipped without root)."""
    with tmpfs(tmp_path / "disk", "8m") as mount:
        yield mount


async def test_a_read_only_job_folder_is_named_before_any_request(job_fs: Path) -> None:
    """A job whose folder became read-only (a remounted disk): --resume, and a new job
    there, exit 3 naming the folder; no server is asked."""
    import subprocess

    small_fs = job_fs
    async with InvokeAIDouble() as server:
        out = small_fs / "renders"
        args = [*CLI, str(examples.path("noise-sweep")), "--sweep", "Seed=1..2",
                "--server", server.url, "--out", str(out)]
        first = await anyio.run_process(args, env=cli_env(), check=False)
        assert first.returncode == 0, first.stderr.decode()
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
        asked = len(server.requests)
        for extra in (["--resume"], ["--out", str(small_fs / "other")]):
            done = await anyio.run_process([*args, *extra], env=cli_env(), check=False)
            err = done.stderr.decode()
            assert done.returncode == EXIT_INPUT, err
            assert "not a writable folder" in err, err
            assert str(small_fs) in err
        assert len(server.requests) == asked


def test_the_results_log_lists_each_variation_once(tmp_path: Path) -> None:
    """A resumed log keeps what it lists (a line cut short by a crash is dropped), adds only
    variations it does not list yet; a new job starts it empty; a planted symlink is
    refused, its target untouched."""
    from invokeai_client.cli._listing import open_results_log
    from invokeai_client.errors import FileWriteError

    log_file = tmp_path / "results.jsonl"
    log_file.write_bytes(b'{"index": 0}\n{"index": 1}\nnot json\n{"index": 2, "sta')
    with open_results_log(tmp_path, resume=True) as log:
        assert log.listed == {0, 1}
        assert [log.add({"index": i}) for i in (1, 2, 5, 2)] == [False, True, True, False]
    assert log_file.read_text().splitlines() == [
        '{"index": 0}', '{"index": 1}', "not json", '{"index": 2}', '{"index": 5}',
    ]
    with open_results_log(tmp_path, resume=False) as log:
        assert log.listed == set()
    assert log_file.read_text() == ""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    log_file.unlink()
    log_file.symlink_to(victim)
    for resume in (True, False):
        with pytest.raises(FileWriteError, match=r"results\.jsonl"), open_results_log(
            tmp_path, resume=resume
        ):
            pass
    assert victim.read_text() == "keep me"


async def test_create_board_makes_the_board_on_every_server(tmp_path: Path) -> None:
    name = "batch-renders"
    async with InvokeAIDouble() as one, InvokeAIDouble() as two:
        args = [*CLI, str(examples.path("noise-sweep")), "--sweep", "Seed=1..6",
                "--server", one.url, "--server", two.url, "--board", name]
        refused = await anyio.run_process([*args, "--out", str(tmp_path / "a")],
                                          env=cli_env(), check=False)
        assert refused.returncode == EXIT_INPUT, refused.stderr.decode()
        assert name in refused.stderr.decode()
        done = await anyio.run_process([*args, "--out", str(tmp_path / "b"), "--create-board"],
                                       env=cli_env(), check=False)
        assert done.returncode == 0, done.stderr.decode()
        on_boards = set()
        for server in (one, two):
            async with AsyncClient(server.url) as client:
                board = await client.boards.resolve_board(name)
                on_boards |= {image.image_name async for image in client.images.list(board=board)}
        listed = {image for e in listing(tmp_path / "b") for image in e["images"]}
        assert len(listed) == 6
        assert on_boards == listed
