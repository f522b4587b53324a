"""Reliability, class 2 (disk side): whatever the disk says, a file the SDK writes fails inside
the error tree, naming the path and the cause, and leaves nothing partial behind.

The limits are real: a full tmpfs (ENOSPC) and a read-only one (EROFS) when this process may
mount (root, as in CI); a file size limit (EFBIG), no free descriptor (EMFILE) and an
unwritable folder (EACCES) in a child process (:mod:`tests.disk_child`), so the limits never
touch pytest itself.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from invokeai_client import (
    AsyncClient,
    FileWriteError,
    ImageRef,
    InvokeAIError,
    ValidationError,
)
from invokeai_client.pool import ServerPool
from invokeai_client.testing.hostile import HostileServer
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import tmpfs
from .test_pool import FAST, doubles

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]


def _child(mode: str, folder: Path, prefix: list[str] | None = None) -> list[dict[str, object]]:
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "tests.disk_child", mode, str(folder)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _assert_named_failures(rows: list[dict[str, object]], code: int, folder: Path) -> None:
    assert [r["call"] for r in rows] == ["download", "save"]
    for row in rows:
        assert row["error"] == "FileWriteError", row
        assert row["errno"] == code
        assert row["path"] == str(folder / "x.png")
        assert str(folder / "x.png") in str(row["message"])
        assert errno.errorcode[code] in str(row["message"])
        assert row["left"] == []  # neither the file nor its temporary .part


def test_a_file_size_limit_is_a_file_write_error_and_leaves_nothing(tmp_path: Path) -> None:
    _assert_named_failures(_child("fsize", tmp_path), errno.EFBIG, tmp_path)


def test_no_file_descriptor_left_is_a_file_write_error(tmp_path: Path) -> None:
    _assert_named_failures(_child("nofile", tmp_path), errno.EMFILE, tmp_path)


def test_an_unwritable_folder_is_a_file_write_error(tmp_path: Path) -> None:
    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes anywhere: drop the capability in the child
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot lose CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    tmp_path.chmod(0o555)
    try:
        rows = _child("plain", tmp_path, prefix)
    finally:
        tmp_path.chmod(0o755)
    _assert_named_failures(rows, errno.EACCES, tmp_path)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (skipped where this process may not mount)."""
    with tmpfs(tmp_path / "small", "64k") as mount:
        yield mount


def _read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)


async def test_a_full_disk_is_a_file_write_error_and_leaves_nothing(small_fs: Path) -> None:
    async with HostileServer("huge") as server, AsyncClient(
        server.url, events=False, max_download_size=4 * 1024 * 1024
    ) as client:
        for call in (
            lambda: client.images.download("x.png", small_fs),
            lambda: ImageRef("x.png", client=client).save(small_fs / "sub"),
        ):
            with pytest.raises(FileWriteError, match="No space left") as caught:
                await call()
            assert caught.value.errno == errno.ENOSPC
            assert caught.value.path.endswith("x.png")
    assert os.listdir(small_fs) == ["sub"]
    assert os.listdir(small_fs / "sub") == []


async def test_a_read_only_file_system_is_a_file_write_error(small_fs: Path) -> None:
    (small_fs / "kept.png").write_bytes(b"old")
    _read_only(small_fs)
    async with HostileServer("image") as server, AsyncClient(server.url, events=False) as c:
        with pytest.raises(FileWriteError, match="Read-only") as caught:
            await c.images.download("x.png", small_fs)
        assert caught.value.errno == errno.EROFS
        with pytest.raises(FileWriteError, match="Read-only"):
            await c.images.download("kept.png", small_fs, overwrite=True)
        with pytest.raises(FileWriteError, match=re.escape(str(small_fs / "new"))):
            await ImageRef("x.png", client=c).save(small_fs / "new")
    assert os.listdir(small_fs) == ["kept.png"]
    assert (small_fs / "kept.png").read_bytes() == b"old"


async def test_a_job_manifest_on_a_full_or_read_only_disk_fails_by_name(
    small_fs: Path,
) -> None:
    manifest = small_fs / "job.sqlite"
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        wf = await pool.load(examples.path("noise-sweep"))
        with pytest.raises(FileWriteError, match="full") as caught:  # 5,000 rows > 64 KiB
            await pool.submit_batch(wf, {"Seed": list(range(5000))}, manifest=manifest)
        assert caught.value.path == str(manifest)
        assert server.queue.items == {}  # nothing was sent
        assert not manifest.exists()  # no half manifest a retry would take for a job
        _read_only(small_fs)
        with pytest.raises(InvokeAIError, match="Read-only") as refused:
            await pool.submit_batch(wf, {"Seed": [1]}, manifest=manifest)
    assert str(small_fs) in str(refused.value)


async def test_a_file_that_is_no_manifest_is_refused_by_name(tmp_path: Path) -> None:
    stranger = tmp_path / "notes.txt"
    stranger.write_text("not a database " * 100)
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        with pytest.raises(ValidationError, match=r"notes\.txt"):
            await pool.resume(stranger)
    assert stranger.read_text() == "not a database " * 100


async def test_a_name_too_long_for_the_file_system_is_a_file_write_error(
    tmp_path: Path,
) -> None:
    too_long = tmp_path / ("a" * 300 + ".png")
    async with HostileServer("image") as server, AsyncClient(server.url, events=False) as c:
        with pytest.raises(FileWriteError) as caught:
            await c.images.download("x.png", too_long)
    assert caught.value.errno == errno.ENAMETOOLONG
    assert os.listdir(tmp_path) == []


async def test_a_file_in_the_way_of_the_folder_is_refused_by_name(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    async with HostileServer("image") as server, AsyncClient(server.url, events=False) as c:
        with pytest.raises(ValidationError, match="out"):
            await ImageRef("x.png", client=c).save(blocker / "sub")
        with pytest.raises(InvokeAIError, match="out"):
            await c.images.download("x.png", blocker / "x.png")
    assert blocker.read_text() == "a file"
    assert os.listdir(tmp_path) == ["out"]


async def test_the_cli_on_a_read_only_disk_is_one_line_naming_the_folder(
    double: Peer, small_fs: Path
) -> None:
    _read_only(small_fs)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "invokeai_client.cli", "run", "--url", double.url,
        "--out", str(small_fs / "renders"), "--sweep", "Seed=1,2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 300)
    text = err.decode()
    assert process.returncode not in (0, None)
    assert "Traceback" not in text
    assert str(small_fs) in text
    assert len(text.strip().splitlines()) == 1
