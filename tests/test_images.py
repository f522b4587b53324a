"""client.images: upload, read, download, star, delete, list (250-image pagination), safety."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from invokeai_client import (
    UNCATEGORIZED,
    APIError,
    AsyncClient,
    Board,
    BulkDownloadError,
    ImageDTO,
    NotFoundError,
    ValidationError,
)

from .conftest import Peer
from .helpers import png

pytestmark = pytest.mark.anyio


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
async def board(client: AsyncClient) -> AsyncIterator[Board]:
    made = await client.boards.create(f"sdk-images-{uuid.uuid4().hex[:8]}")
    yield made
    await client.boards.delete(made, delete_images=True)


async def count_all(client: AsyncClient) -> int:
    page = await client.images.list(intermediate=None, page_size=1)
    return page.total or 0


async def test_upload_in_every_form_and_read_back(
    client: AsyncClient, board: Board, tmp_path: Path
) -> None:
    path = tmp_path / "from-disk.png"
    path.write_bytes(png(40, 30))
    from_path = await client.images.upload(path, board=board, metadata={"seed": 7, "who": "sdk"})
    from_bytes = await client.images.upload(png(33, 21), category="general", board=board.board_id)
    from_pil = await client.images.upload(Image.new("RGBA", (9, 5)), board=board.board_name)
    assert [i.size for i in (from_path, from_bytes, from_pil)] == [(40, 30), (33, 21), (9, 5)]
    assert from_path.image_category == "user"
    assert from_bytes.image_category == "general"
    assert from_path.image_origin == "external"
    assert all(i.board_id == board.board_id for i in (from_path, from_bytes, from_pil))

    got = await client.images.get(from_path.image_name)
    assert got.image_name == from_path.image_name
    assert got.created_at is not None
    assert await client.images.metadata(from_path) == {"seed": 7, "who": "sdk"}
    assert await client.images.metadata(from_bytes) is None
    many = await client.images.get_many([from_pil, from_path.image_name, "missing.png"])
    assert [i.image_name for i in many] == [from_pil.image_name, from_path.image_name]

    data = await client.images.download(from_path)
    assert decode(data).size == (40, 30)
    assert decode(data).format == "PNG"
    thumb = await client.images.thumbnail(from_path)
    assert thumb[:4] == b"RIFF"
    assert thumb[8:12] == b"WEBP"
    assert decode(thumb).format == "WEBP"

    saved = await client.images.download(from_bytes, tmp_path)
    assert saved == (tmp_path / from_bytes.image_name).resolve()
    assert decode(saved.read_bytes()).size == (33, 21)
    thumb_path = await client.images.thumbnail(from_bytes, tmp_path)
    assert thumb_path.suffix == ".webp"
    assert decode(thumb_path.read_bytes()).format == "WEBP"
    named = await client.images.download(from_pil, tmp_path / "chosen.png")
    assert named.name == "chosen.png"
    assert decode(named.read_bytes()).size == (9, 5)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

    assert client.images.url(from_path).endswith(f"/api/v1/images/i/{from_path.image_name}/full")


async def test_workflow_and_graph_embedded_in_an_image_are_parsed(
    client: AsyncClient, board: Board
) -> None:
    graph = {"id": "g", "nodes": {"a": {"id": "a", "type": "integer", "value": 3}}, "edges": []}
    image = await client.images.upload(png(text={"invokeai_graph": json.dumps(graph)}),
                                       board=board)
    assert image.has_workflow
    embedded = await client.images.workflow(image)
    assert embedded.graph == graph
    assert embedded.workflow is None
    plain = await client.images.upload(png(), board=board)
    assert not plain.has_workflow
    empty = await client.images.workflow(plain)
    assert (empty.workflow, empty.graph) == (None, None)


async def test_star_update_and_delete(client: AsyncClient, board: Board) -> None:
    images = [await client.images.upload(png(), board=board) for _ in range(4)]
    starred = await client.images.star(images[:2])
    assert set(starred.done) == {i.image_name for i in images[:2]}
    assert (await client.images.get(images[0])).starred
    assert (await client.images.unstar(images[0])).done == [images[0].image_name]
    assert not (await client.images.get(images[0])).starred
    changed = await client.images.update(images[2], category="control", starred=True)
    assert changed.image_category == "control"
    assert changed.starred

    single = await client.images.delete(images[3])
    assert single.done == [images[3].image_name]
    with pytest.raises(NotFoundError, match=images[3].image_name):
        await client.images.get(images[3])
    with pytest.raises(NotFoundError, match=images[3].image_name):
        await client.images.delete(images[3])

    bulk = await client.images.delete_many(images[:3])
    assert set(bulk.done) == {i.image_name for i in images[:3]}
    for image in images[:3]:
        assert not await client.images.exists(image)
    assert await client.boards.image_names(board) == []


async def test_more_names_than_one_request_takes_are_read_in_one_call(
    client: AsyncClient, board: Board
) -> None:
    image = await client.images.upload(png(), board=board)
    names = [f"missing-{i}.png" for i in range(1500)] + [image.image_name]
    assert [i.image_name for i in await client.images.get_many(names)] == [image.image_name]


async def test_list_filters(client: AsyncClient, board: Board) -> None:
    a = await client.images.upload(png(), board=board, metadata={"prompt": "A Red Fox"})
    b = await client.images.upload(png(), board=board, category="control")
    c = await client.images.upload(png(), board=board, intermediate=True)
    d = await client.images.upload(png(), board=board)
    await client.images.star(d)

    def names(images: list[ImageDTO]) -> list[str]:
        return [i.image_name for i in images]

    listed = await client.images.list(board=board).collect()
    assert names(listed) == [d.image_name, b.image_name, a.image_name]  # starred, then newest
    unstarred_first = await client.images.list(board=board, starred_first=False).collect()
    assert names(unstarred_first) == [d.image_name, b.image_name, a.image_name]
    oldest_first = await client.images.list(board=board, order="asc", starred_first=False)
    assert names(list(oldest_first)) == [a.image_name, b.image_name, d.image_name]
    with_intermediates = await client.images.list(board=board, intermediate=None).collect()
    assert set(names(with_intermediates)) == {a.image_name, b.image_name, c.image_name,
                                              d.image_name}
    only_intermediate = await client.images.list(board=board, intermediate=True).collect()
    assert names(only_intermediate) == [c.image_name]
    assert names(await client.images.list(board=board, category="control").collect()) == [
        b.image_name
    ]
    assert names(await client.images.list(board=board, starred=True).collect()) == [d.image_name]
    assert names(await client.images.list(board=board, starred=False).collect()) == [
        b.image_name,
        a.image_name,
    ]
    assert names(await client.images.list(board=board, search="red fox").collect()) == [
        a.image_name
    ]
    loose = await client.images.upload(png())
    try:
        uncategorized = names(await client.images.list(board=UNCATEGORIZED).collect())
        assert loose.image_name in uncategorized
        assert a.image_name not in uncategorized
    finally:
        await client.images.delete(loose)


async def test_pagination_lists_250_images_once_each_in_server_order(
    client: AsyncClient, board: Board
) -> None:
    limit = asyncio.Semaphore(8)

    async def upload(n: int) -> str:
        async with limit:
            return (await client.images.upload(png(8 + n % 5, 8), board=board)).image_name

    uploaded = set(await asyncio.gather(*(upload(n) for n in range(250))))
    assert len(uploaded) == 250

    first = await client.images.list(board=board, page_size=64)
    assert len(first) == 64
    assert first.total == 250
    assert first.has_more

    listed = [i.image_name async for i in client.images.list(board=board, page_size=64)]
    assert len(listed) == 250
    assert set(listed) == uploaded
    server_order = await client.images.list(board=board, page_size=1000)
    assert listed == [i.image_name for i in server_order]
    assert listed[:64] == [i.image_name for i in first]

    gone = await client.images.delete_many(listed)
    assert len(gone.done) == 250
    assert await client.boards.image_names(board) == []


async def test_not_an_image_is_refused_and_nothing_is_left_behind(
    peer: Peer, tmp_path: Path
) -> None:
    async with peer.client() as client:
        before = await count_all(client)
        sent = client._http.request_count
        with pytest.raises(ValidationError, match="is not an image"):
            await client.images.upload(b"just some text, certainly no picture")
        notes = tmp_path / "notes.png"
        notes.write_text("a text file with an image's name")
        with pytest.raises(ValidationError, match=r"notes\.png"):
            await client.images.upload(notes)
        with pytest.raises(ValidationError, match="does not exist"):
            await client.images.upload(tmp_path / "missing.png")
        with pytest.raises(ValidationError, match="metadata"):
            await client.images.upload(png(), metadata={"x": object()})
        with pytest.raises(ValidationError, match="category"):
            await client.images.upload(png(), category="selfies")  # type: ignore[arg-type]
        assert client._http.request_count == sent  # refused before any request

        # a PNG signature followed by garbage: only the server can tell
        with pytest.raises(APIError, match="could not read it as an image") as caught:
            await client.images.upload(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
        assert caught.value.status == 415
        assert await count_all(client) == before


async def test_path_traversal_names_are_refused(peer: Peer, tmp_path: Path) -> None:
    target = tmp_path / "downloads"
    target.mkdir()
    async with peer.client() as client:
        sent = client._http.request_count
        for evil in ("../../etc/passwd", "..", "a/b.png", "..\\x.png", "x.png?y=1", "/abs.png",
                     "nul\x00.png"):
            with pytest.raises(ValidationError, match="plain file name"):
                await client.images.download(evil, target)
            with pytest.raises(ValidationError, match="plain file name"):
                await client.images.get(evil)
        with pytest.raises(ValidationError, match="does not exist"):
            await client.images.download("fine.png", tmp_path / "no-such-folder" / "f.png")
        for not_one in ([], ["a.png", "b.png"], 42):
            with pytest.raises(ValidationError, match="an image name or an image"):
                await client.images.get(not_one)  # type: ignore[arg-type]
        assert client._http.request_count == sent
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


async def test_unknown_image_is_not_found_by_name(client: AsyncClient, tmp_path: Path) -> None:
    name = f"{uuid.uuid4()}.png"
    for call in (
        client.images.get(name),
        client.images.metadata(name),
        client.images.workflow(name),
        client.images.download(name),
        client.images.download(name, tmp_path),
        client.images.delete(name),
        client.images.update(name, starred=True),
        client.boards.remove_images(name),
    ):
        with pytest.raises(NotFoundError, match=name):
            await call
    assert list(tmp_path.iterdir()) == []


async def test_uploads_in_a_scope_are_deleted_afterwards(client: AsyncClient) -> None:
    async with client.images.uploading(png()) as image:
        assert await client.images.exists(image)
    assert not await client.images.exists(image)

    kept: list[ImageDTO] = []

    async def work_that_fails() -> None:
        async with client.images.upload_scope() as scope:
            kept.append(await scope.upload(png()))
            kept.append(await scope.upload(png()))
            scope.keep(kept[1])
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        await work_that_fails()
    assert not await client.images.exists(kept[0])
    assert await client.images.exists(kept[1])
    await client.images.delete(kept[1])


async def test_intermediates_count_and_clear(client: AsyncClient) -> None:
    before = await client.images.intermediates_count()
    image = await client.images.upload(png(), intermediate=True)
    assert await client.images.intermediates_count() == before + 1
    assert await client.images.clear_intermediates() >= 1
    assert await client.images.intermediates_count() == 0
    assert not await client.images.exists(image)


async def test_a_zip_of_images_or_of_a_board_holds_each_image_once(
    client: AsyncClient, board: Board, tmp_path: Path
) -> None:
    sizes = {(20, 10), (8, 6), (33, 17)}
    dtos = [await client.images.upload(png(w, h), board=board) for w, h in sorted(sizes)]
    outside = await client.images.upload(png(5, 5))
    try:
        picked = await client.images.download_zip(dtos[:2])
        saved = await client.images.download_zip(board=board.board_name, dest=tmp_path)
    finally:
        await client.images.delete(outside)
    with zipfile.ZipFile(io.BytesIO(picked)) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"{dto.image_category}/{dto.image_name}" for dto in dtos[:2]
        )
    assert saved.parent == tmp_path.resolve()
    assert saved.suffix == ".zip"
    assert saved.name.startswith(board.board_name)  # InvokeAI names a board's zip after it
    assert [p.name for p in tmp_path.iterdir()] == [saved.name]  # no partial file left
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        found = {decode(archive.read(name)).size for name in names}
    assert len(names) == 3  # the board's images, each once, not the one outside it
    assert {name.rsplit("/", 1)[1] for name in names} == {dto.image_name for dto in dtos}
    assert found == sizes


async def test_a_zip_of_a_missing_image_names_it(client: AsyncClient, board: Board) -> None:
    real = await client.images.upload(png(4, 4), board=board)
    missing = f"{uuid.uuid4()}.png"
    with pytest.raises(BulkDownloadError, match=missing) as caught:
        await client.images.download_zip([real, missing])
    assert caught.value.item_name.endswith(".zip")
    assert real.image_name not in str(caught.value)
    with pytest.raises(ValidationError, match="either images or board"):
        await client.images.download_zip()
    with pytest.raises(ValidationError, match="either images or board"):
        await client.images.download_zip([real], board=board)
    with pytest.raises(ValidationError, match="1 to 1000 images"):
        await client.images.download_zip([])
