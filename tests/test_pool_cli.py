"""``invokeai-client batch``: a durable job over several servers; killed and resumed."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from invokeai_client import AsyncClient
from invokeai_client.cli._console import EXIT_INPUT
from invokeai_client.pool import Manifest
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.workflows import examples

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
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert manifest is not None
        before = await manifest.counts()
        await manifest.close()
        assert before.get("completed", 0) >= 40
        assert before.get("completed", 0) < 120, "killed too late to test resume"
        again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
        assert again.returncode == 0, again.stderr.decode()
        # Every variation completed exactly once on the servers: none re-run, none lost.
        assert await completed_seeds(one, two) == Counter(range(1, 121))
        assert len(pngs(out)) == 120
        lines = again.stdout.decode().split()
        assert len(lines) == 120
        assert "resuming" in again.stderr.decode()


async def test_csv_and_jsonl_give_one_variation_per_row(tmp_path: Path) -> None:
    async with InvokeAIDouble() as server:
        rows = [{"Seed": str(seed), "Blur radius": str(seed % 3)} for seed in range(5)]
        with open(tmp_path / "v.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["Seed", "Blur radius"])
            writer.writeheader()
            writer.writerows(rows)
        (tmp_path / "v.jsonl").write_text(
            "\n".join(json.dumps({"Seed": 10 + n}) for n in range(3)) + "\n"
        )
        base = [*CLI, str(examples.path("noise-sweep")), "--server", server.url]
        by_csv = await anyio.run_process(
            [*base, "--csv", str(tmp_path / "v.csv"), "--out", str(tmp_path / "a")],
            env=cli_env(), check=False,
        )
        assert by_csv.returncode == 0, by_csv.stderr.decode()
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
        with sqlite3.connect(out / "job.sqlite") as db:  # the crash window, as left on disk
            db.execute("UPDATE variations SET status='sent', images=NULL, saved=NULL "
                       "WHERE idx=1")
        with anyio.fail_after(60):
            again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
        assert again.returncode == 0, again.stderr.decode()
        assert len(pngs(out)) == 3
        assert await completed_seeds(server) == Counter([1, 2, 3])  # nothing ran again
