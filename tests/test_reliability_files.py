"""Reliability, class 2: files the SDK writes stay inside their folder, never overwrite unless
asked, give distinct names distinct files, appear atomically and hold what they claim to be.

Runs against both peers (real images have uuid names; ``name=`` gives odd ones) and against a
hostile server for what only a broken server can send (odd image names, JSON instead of PNG).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from invokeai_client import (
    AsyncClient,
    ImageRef,
    InvokeAIError,
    UnexpectedResponseError,
    ValidationError,
    safe_file_name,
)
from invokeai_client.pool import ServerPool
from invokeai_client.testing.hostile import PNG, HostileServer
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import png
from .test_pool import FAST, doubles

pytestmark = pytest.mark.anyio

ODD_NAMES = [
    "a b.png",
    "a_b.png",
    "ü.png",
    "é.png",
    "e.png",
    ".hidden.png",
    "hidden.png",
    "\u202egnp.exe.png",  # right-to-left override
    "tab\there.png",
    "con.png",
    "a" * 246 + ".png",  # a legal 250-character name
    "\u00e9" * 200 + ".png",  # 400 bytes in UTF-8: too long, shortened
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0b1f4c2e-5d7a-4a43-9a4c-2b0e8f1d3c55.png", "0b1f4c2e-5d7a-4a43-9a4c-2b0e8f1d3c55.png"),
        ("a_b.png", "a_b.png"),
        ("a" * 251 + ".png", "a" * 251 + ".png"),  # 255 bytes: kept verbatim
    ],
)
def test_plain_names_are_kept_verbatim(name: str, expected: str) -> None:
    assert safe_file_name(name) == expected


def test_cleaned_names_are_distinct_safe_and_stable() -> None:
    names = [safe_file_name(n) for n in ODD_NAMES]
    assert len(set(names)) == len(names)  # no two collapse to one file
    for original, cleaned in zip(ODD_NAMES, names, strict=True):
        assert cleaned == safe_file_name(original)  # deterministic
        assert not cleaned.startswith(".")
        assert len(cleaned.encode()) <= 255
        assert cleaned.isascii()
        assert cleaned.isprintable()
        assert " " not in cleaned
        assert cleaned.endswith(".png")
    for evil in ("../../etc/passwd", "..", "a/../../b.png", "C:\\x\\..\\y.png", ""):
        cleaned = safe_file_name(evil)
        assert "/" not in cleaned
        assert "\\" not in cleaned
        assert cleaned not in ("", ".", "..")


async def _one_image(client: AsyncClient) -> ImageRef:
    dto = await client.images.upload(png(8, 8), intermediate=True)
    return ImageRef(dto.image_name, client=client)


async def test_save_never_follows_a_planted_symlink(peer: Peer, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    async with peer.client() as client:
        ref = await _one_image(client)
        try:
            (folder / ref.image_name).symlink_to(outside)
            with pytest.raises(ValidationError, match="already exists"):
                await ref.save(folder)
            with pytest.raises(ValidationError, match="already exists"):
                await client.images.download(ref, folder)
            assert outside.read_text() == "precious"
            saved = await ref.save(folder, overwrite=True)  # replaces the link, not its target
            assert outside.read_text() == "precious"
            assert not saved.is_symlink()
            assert saved.read_bytes().startswith(b"\x89PNG")
        finally:
            await client.images.delete(ref)
    assert sorted(p.name for p in folder.iterdir()) == [ref.image_name]  # no temp file left


async def test_nothing_is_overwritten_unless_asked(peer: Peer, tmp_path: Path) -> None:
    async with peer.client() as client:
        ref = await _one_image(client)
        try:
            first = await ref.save(tmp_path)
            first.write_bytes(b"mine")
            for again in (ref.save(tmp_path), client.images.download(ref, tmp_path),
                          client.images.download(ref, first), ref.save(tmp_path, name=first.name)):
                with pytest.raises(ValidationError, match="overwrite=True"):
                    await again
            assert first.read_bytes() == b"mine"
            assert await client.images.download(ref, first, overwrite=True) == first
            assert first.read_bytes().startswith(b"\x89PNG")
        finally:
            await client.images.delete(ref)


async def test_distinct_names_give_distinct_files(peer: Peer, tmp_path: Path) -> None:
    async with peer.client() as client:
        ref = await _one_image(client)
        try:
            paths = [await ref.save(tmp_path, name=name) for name in ODD_NAMES]
        finally:
            await client.images.delete(ref)
    assert len(set(paths)) == len(ODD_NAMES)
    assert all(p.parent == tmp_path.resolve() for p in paths)
    assert (tmp_path / ("a" * 246 + ".png")) in paths  # the long legal name, verbatim
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


async def test_download_and_save_name_files_alike(tmp_path: Path) -> None:
    """Odd server names (leading dots, bidi overrides) only come from a broken server."""
    (tmp_path / "d").mkdir()
    async with HostileServer("image") as server, AsyncClient(server.url, events=False) as client:
        for name in (".bashrc", "\u202egnp.exe", "..x.png", "a b.png", "ü.png"):
            by_download = await client.images.download(name, tmp_path / "d")
            by_save = await ImageRef(name, client=client).save(tmp_path / "s")
            assert by_download.name == by_save.name == safe_file_name(name)
            assert not by_save.name.startswith(".")
            assert by_save.read_bytes() == PNG


async def test_a_body_that_is_not_an_image_is_not_saved(tmp_path: Path) -> None:
    async with HostileServer("not_image") as server, AsyncClient(server.url, events=False) as c:
        with pytest.raises(UnexpectedResponseError, match="expected an image"):
            await c.images.download("x.png", tmp_path)
        with pytest.raises(UnexpectedResponseError, match="expected an image"):
            await ImageRef("x.png", client=c).save(tmp_path)
        with pytest.raises(UnexpectedResponseError, match="expected an image"):
            await c.images.download("x.png")
    assert os.listdir(tmp_path) == []  # not even a temporary file


async def _cli(*args: str) -> tuple[int, str]:
    """Run ``invokeai-client`` in a child process (the double serves in this one)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "invokeai_client.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_the_cli_never_writes_results_through_a_planted_symlink(
    double: Peer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "results.json").symlink_to(victim)
    code, err = await _cli("run", "--url", double.url, "--out", str(out), "--sweep", "Seed=1,2")
    assert code == 0, err
    assert victim.read_text() == "keep me"  # was overwritten with the results
    assert not (out / "results.json").is_symlink()
    assert len(json.loads((out / "results.json").read_text())["items"]) == 2


async def test_a_job_lock_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    job = tmp_path / "job"
    job.mkdir()
    (job / "job.sqlite.lock").symlink_to(victim)
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        wf = await pool.load(examples.path("noise-sweep"))
        with pytest.raises(InvokeAIError, match=r"job\.sqlite"):
            await pool.submit_batch(wf, {"Seed": [1]}, manifest=job / "job.sqlite")
        assert server.queue.items == {}
    assert victim.read_text() == "keep me"  # was truncated to the lock holder's pid
