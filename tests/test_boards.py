"""client.boards: lifecycle, listing, images on boards, the resolver, and multi-user access."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from invokeai_client import (
    UNCATEGORIZED,
    AsyncClient,
    Board,
    BoardError,
    BoardNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

from .conftest import ADMIN, USER, Peer
from .helpers import png

pytestmark = pytest.mark.anyio


def unique(prefix: str = "sdk-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def board(client: AsyncClient) -> AsyncIterator[Board]:
    made = await client.boards.create(unique())
    yield made
    with contextlib.suppress(NotFoundError):
        await client.boards.delete(made.board_id, delete_images=True)


async def test_board_lifecycle(client: AsyncClient) -> None:
    name = unique()
    made = await client.boards.create(name)
    try:
        assert made.board_name == name
        assert made.created_at is not None
        listed = {b.board_id: b.board_name for b in await client.boards.all()}
        assert listed[made.board_id] == name
        assert (await client.boards.get(made.board_id)).board_name == name
        assert (await client.boards.get(name)).board_id == made.board_id
        found = await client.boards.find(name)
        assert found is not None
        assert found.board_id == made.board_id
        assert await client.boards.find(unique("absent")) is None

        renamed = await client.boards.rename(made, name + "-renamed")
        assert renamed.board_name == name + "-renamed"
        assert (await client.boards.get(made)).board_name == name + "-renamed"

        archived = await client.boards.archive(made)
        assert archived.archived
        assert made.board_id not in {b.board_id for b in await client.boards.all()}
        every = await client.boards.all(include_archived=True)
        assert made.board_id in {b.board_id for b in every}
        assert not (await client.boards.unarchive(made)).archived
        assert made.board_id in {b.board_id for b in await client.boards.all()}
    finally:
        result = await client.boards.delete(made)
    assert result.board_id == made.board_id
    assert made.board_id not in {b.board_id for b in await client.boards.all()}
    with pytest.raises(BoardNotFoundError, match=made.board_id):
        await client.boards.get(made.board_id)


async def test_paged_board_list_yields_each_board_once(client: AsyncClient) -> None:
    made = [await client.boards.create(unique("paged")) for _ in range(3)]
    try:
        first = await client.boards.list(page_size=2)
        assert len(first) == 2
        assert first.has_more
        ids = [b.board_id async for b in client.boards.list(page_size=2)]
        assert len(ids) == len(set(ids))
        assert {b.board_id for b in made} <= set(ids)
        # newest first by default
        mine = [i for i in ids if i in {b.board_id for b in made}]
        assert mine == [b.board_id for b in reversed(made)]
        by_name = [
            b.board_name
            async for b in client.boards.list(order_by="board_name", direction="ASC")
            if b.board_id in {m.board_id for m in made}
        ]
        assert by_name == sorted(by_name, key=str.lower)
    finally:
        for b in made:
            await client.boards.delete(b)


async def test_images_on_boards(client: AsyncClient, board: Board) -> None:
    on_board = [await client.images.upload(png(), board=board) for _ in range(2)]
    loose = [await client.images.upload(png()) for _ in range(3)]
    try:
        names = await client.boards.image_names(board)
        assert set(names) == {i.image_name for i in on_board}
        assert all(i.board_id == board.board_id for i in on_board)
        assert (await client.boards.get(board)).asset_count == 2

        added = await client.boards.add_images(board, loose[0])
        assert added.done == [loose[0].image_name]
        assert board.board_id in added.affected_boards
        bulk = await client.boards.add_images(board.board_name, loose[1:])
        assert set(bulk.done) == {i.image_name for i in loose[1:]}
        assert len(await client.boards.image_names(board)) == 5

        removed = await client.boards.remove_images(loose[0])
        assert removed.done == [loose[0].image_name]
        assert loose[0].image_name in await client.boards.image_names(UNCATEGORIZED)
        await client.boards.remove_images(loose[1:])
        assert set(await client.boards.image_names(board)) == {i.image_name for i in on_board}
        assert (await client.images.get(loose[1])).board_id is None

        # deleting the board keeps its images (now uncategorized) unless asked otherwise
        kept = await client.boards.delete(board)
        assert set(kept.deleted_board_images) == {i.image_name for i in on_board}
        assert (await client.images.get(on_board[0])).board_id is None
    finally:
        await client.images.delete_many(on_board + loose)


async def test_deleting_a_board_with_its_images(client: AsyncClient) -> None:
    doomed = await client.boards.create(unique())
    images = [await client.images.upload(png(), board=doomed.board_name) for _ in range(2)]
    result = await client.boards.delete(doomed, delete_images=True)
    assert set(result.deleted_images) == {i.image_name for i in images}
    for image in images:
        assert not await client.images.exists(image)


async def test_unknown_boards_are_named_in_the_error(client: AsyncClient) -> None:
    missing_id = str(uuid.uuid4())
    with pytest.raises(BoardNotFoundError, match=missing_id) as caught:
        await client.boards.get(missing_id)
    assert isinstance(caught.value, NotFoundError)
    with pytest.raises(BoardNotFoundError, match="no-board-named-this"):
        await client.boards.get("no-board-named-this")
    with pytest.raises(BoardNotFoundError, match=missing_id):
        await client.boards.delete(missing_id)
    with pytest.raises(BoardNotFoundError, match=missing_id):
        await client.boards.image_names(missing_id)
    with pytest.raises(NotFoundError, match="no-board-named-this"):
        await client.images.upload(png(), board="no-board-named-this")


async def test_moving_an_unknown_image_names_the_image(
    client: AsyncClient, board: Board
) -> None:
    ghost = f"{uuid.uuid4()}.png"
    with pytest.raises(NotFoundError, match=ghost):
        await client.boards.add_images(board, ghost)
    with pytest.raises(NotFoundError, match=ghost):
        await client.boards.remove_images(ghost)


async def test_bad_board_input_is_refused_before_any_request(peer: Peer) -> None:
    async with peer.client() as client:
        sent = client._http.request_count
        with pytest.raises(ValidationError, match="at most 300"):
            await client.boards.create("x" * 301)
        with pytest.raises(ValidationError, match="non-empty"):
            await client.boards.create("  ")
        with pytest.raises(ValidationError, match="visibility"):
            await client.boards.update("whatever", visibility="secret")
        with pytest.raises(BoardError, match="uncategorized"):
            await client.boards.delete(UNCATEGORIZED)
        assert client._http.request_count == sent


async def test_an_ambiguous_board_name_is_an_error(client: AsyncClient) -> None:
    name = unique("twin")
    twins = [await client.boards.create(name) for _ in range(2)]
    try:
        with pytest.raises(BoardError, match="2 boards are named"):
            await client.boards.resolve(name)
        assert await client.boards.resolve(twins[1]) == twins[1].board_id
        assert await client.boards.resolve(twins[0].board_id) == twins[0].board_id
    finally:
        for b in twins:
            await client.boards.delete(b)


async def test_get_or_create(client: AsyncClient) -> None:
    name = unique()
    made = await client.boards.get_or_create(name)
    try:
        again = await client.boards.get_or_create(name)
        assert again.board_id == made.board_id
        assert await client.boards.resolve(name, create=True) == made.board_id
    finally:
        await client.boards.delete(made)


# -- multi-user ---------------------------------------------------------------------------


async def test_a_user_cannot_see_or_delete_another_users_board(multiuser_peer: Peer) -> None:
    async with (
        multiuser_peer.client(email=ADMIN[0], password=ADMIN[1]) as admin,
        multiuser_peer.client(email=USER[0], password=USER[1]) as user,
    ):
        private = await admin.boards.create(unique("admins"))
        own = await user.boards.create(unique("users"))
        try:
            assert private.board_id not in {b.board_id for b in await user.boards.all()}
            assert own.board_id in {b.board_id for b in await user.boards.all()}
            # admins see every board
            assert own.board_id in {b.board_id for b in await admin.boards.all()}

            with pytest.raises(PermissionDeniedError, match="Not authorized to access") as seen:
                await user.boards.get(private.board_id)
            assert private.board_id in str(seen.value)
            with pytest.raises(PermissionDeniedError, match="Not authorized to delete") as gone:
                await user.boards.delete(private.board_id)
            assert "not allowed to delete board" in str(gone.value)
            with pytest.raises(BoardNotFoundError):
                await user.boards.get(private.board_name)
            assert (await admin.boards.get(private)).board_name == private.board_name

            # shared boards become visible, but still cannot be deleted by others
            await admin.boards.update(private, visibility="shared")
            assert (await user.boards.get(private.board_id)).board_visibility == "shared"
            with pytest.raises(PermissionDeniedError, match="Not authorized to delete"):
                await user.boards.delete(private.board_id)
        finally:
            await admin.boards.delete(private)
            await user.boards.delete(own)
