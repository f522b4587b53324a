"""BoardRepository: boards, their images, and the one resolver for every ``board=`` argument.

Every ``board=`` argument in the SDK (uploads, image listings, workflow submits) accepts a
board id, a :class:`Board`, a board name, or :data:`UNCATEGORIZED`, and goes through
:meth:`BoardRepository.resolve`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal

from .. import errors
from .._answers import page_offset, parse, parse_list, strings
from .._checks import check_bool, check_choice
from .._paging import Page, Paginator, offset_page
from ..types.boards import UNCATEGORIZED, Board, BoardRef, DeleteBoardResult
from ..types.images import ImagesResult
from ._base import Repository, naming
from ._image_names import (
    ImagesArg,
    check_categories,
    image_name_of,
    image_names_of,
    read_image_record,
)

__all__ = ["UNCATEGORIZED", "BoardRef", "BoardRepository"]

BOARDS = "/api/v1/boards"
BOARD_IMAGES = "/api/v1/board_images"
MAX_BOARD_NAME = 300
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
VISIBILITIES = ("private", "shared", "public")

OrderBy = Literal["created_at", "board_name"]
Direction = Literal["ASC", "DESC"]


def check_board_name(name: object, *, input: str = "name") -> str:
    """A board name as the server accepts it (1..300 characters), else ValidationError."""
    if not isinstance(name, str) or not name.strip():
        raise errors.ValidationError(
            f"a board name must be a non-empty string, got {name!r}",
            input=input,
            rule="non-empty text",
        )
    if len(name) > MAX_BOARD_NAME:
        raise errors.ValidationError(
            f"a board name may have at most {MAX_BOARD_NAME} characters, got {len(name)}",
            input=input,
            rule=f"at most {MAX_BOARD_NAME} characters",
        )
    return name


def _check_board_id(board_id: str) -> str:
    if not board_id or any(c in board_id for c in "/\\?#%") or board_id in (".", ".."):
        raise errors.ValidationError(
            f"{board_id!r} is not a usable board id", input="board", rule="a plain board id"
        )
    return board_id


def _listing_query(
    include_archived: object, order_by: object, direction: object
) -> dict[str, Any]:
    """The checked query parameters both board listings send."""
    check_bool("include_archived", include_archived)
    check_choice("order_by", order_by, ("created_at", "board_name"))
    check_choice("direction", direction, ("ASC", "DESC"))
    return {"include_archived": include_archived, "order_by": order_by, "direction": direction}


class BoardRepository(Repository):
    """Boards of the server (``client.boards``): list, find, create, change, delete, and
    their images. A multi-user server shows each user their own boards plus shared and
    public ones (admins see all)."""

    # -- resolving -----------------------------------------------------------------------

    async def resolve(
        self, board: BoardRef, *, create: bool = False, verify: bool = True
    ) -> str:
        """The id of ``board`` (an id, a :class:`Board`, a name, or ``UNCATEGORIZED``).

        A name must match exactly one board; with ``create=True`` a missing name is created.
        An id is checked with the server unless ``verify=False`` (for calls where the server
        checks it anyway). Raises :class:`~errors.BoardNotFoundError` (also a
        ``NotFoundError``) naming it, or :class:`~errors.BoardError` when a name is ambiguous.
        """
        if isinstance(board, Board):
            return board.board_id
        if board == UNCATEGORIZED:
            return UNCATEGORIZED
        if not isinstance(board, str) or not board:
            raise errors.ValidationError(
                f"board must be a board id, a Board or a board name, got {board!r}",
                input="board",
                rule="board id, Board or name",
            )
        if UUID_RE.match(board):
            if not verify:
                return _check_board_id(board)
            try:
                return (await self._get_by_id(board)).board_id
            except errors.BoardNotFoundError:
                pass  # maybe a board *named* like an id; try the names below
        return (await self._by_name(board, create=create)).board_id

    async def resolve_board(self, board: BoardRef, *, create: bool = False) -> Board:
        """Like :meth:`resolve` but returns the :class:`Board`, fresh from the server."""
        if isinstance(board, Board):
            return await self._get_by_id(board.board_id)
        if board == UNCATEGORIZED:
            raise errors.BoardError("the uncategorized pseudo-board has no board record")
        if not isinstance(board, str) or not board:
            await self.resolve(board)  # raises the ValidationError
        if UUID_RE.match(board):
            try:
                return await self._get_by_id(board)
            except errors.BoardNotFoundError:
                pass
        return await self._by_name(board, create=create)

    async def _get_by_id(self, board_id: str) -> Board:
        _check_board_id(board_id)
        with naming("board", board_id, action="access", not_found=errors.BoardNotFoundError):
            answer = await self._http.request("GET", f"{BOARDS}/{board_id}")
        return parse(Board, answer)

    async def _by_name(self, name: str, *, create: bool) -> Board:
        boards = await self.all(include_archived=True)
        matches = [b for b in boards if b.board_name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            ids = ", ".join(b.board_id for b in matches)
            raise errors.BoardError(
                f"{len(matches)} boards are named {name!r} ({ids}); pass the board id instead"
            )
        if create:
            return await self.create(name)
        known = sorted({b.board_name for b in boards})
        near = [n for n in known if n.casefold() == name.casefold()]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        if not hint and known:
            shown = ", ".join(repr(n) for n in known[:10])
            hint = f"; boards: {shown}" + (" ..." if len(known) > 10 else "")
        raise errors.BoardNotFoundError(
            f"board {name!r} not found: no board has this id or name{hint}",
            status=404,
            detail="Board not found",
            method="GET",
            path=BOARDS,
        )

    # -- listing -------------------------------------------------------------------------

    async def all(
        self,
        *,
        include_archived: bool = False,
        order_by: OrderBy = "created_at",
        direction: Direction = "DESC",
    ) -> builtins.list[Board]:
        """Every board visible to this user, in one request."""
        query = _listing_query(include_archived, order_by, direction)
        answer = await self._http.request("GET", f"{BOARDS}/", params={"all": True, **query})
        return parse_list(Board, answer, missing_ok=True)

    def list(
        self,
        *,
        include_archived: bool = False,
        order_by: OrderBy = "created_at",
        direction: Direction = "DESC",
        page_size: int = 100,
    ) -> Paginator[Board]:
        """Boards page by page: ``await`` it for the first page, ``async for`` for all."""
        query = _listing_query(include_archived, order_by, direction)

        async def fetch(offset: int, limit: int) -> Page[Board]:
            answer = await self._http.request(
                "GET", f"{BOARDS}/", params={"offset": offset, "limit": limit, **query}
            )
            items = parse_list(Board, answer, key="items", missing_ok=True)
            # InvokeAI (6.14) reports the size of this page as "total", not the number of
            # boards, so the total is unknown and a full page means there may be more.
            return offset_page(
                items, offset=page_offset(answer, offset), limit=limit, total=None
            )

        return Paginator(fetch, page_size=page_size, key=lambda b: b.board_id)

    async def get(self, board: BoardRef) -> Board:
        """One board, fresh from the server (by id, :class:`Board` or name)."""
        return await self.resolve_board(board)

    async def find(self, name: str) -> Board | None:
        """The board with exactly this name, or None (archived boards included)."""
        check_board_name(name)
        try:
            return await self._by_name(name, create=False)
        except errors.BoardNotFoundError:
            return None

    # -- changing ------------------------------------------------------------------------

    async def create(self, name: str) -> Board:
        """Create a board (owned by the logged-in user) and return it."""
        check_board_name(name)
        answer = await self._http.request("POST", f"{BOARDS}/", params={"board_name": name})
        return parse(Board, answer)

    async def get_or_create(self, name: str) -> Board:
        """The board with this name, created if there is none."""
        check_board_name(name)
        return await self._by_name(name, create=True)

    async def update(
        self,
        board: BoardRef,
        *,
        name: str | None = None,
        archived: bool | None = None,
        visibility: str | None = None,
        cover_image: str | None = None,
    ) -> Board:
        """Change a board's name, archived flag, visibility (6.13+) or cover image."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["board_name"] = check_board_name(name)
        if archived is not None:
            changes["archived"] = check_bool("archived", archived)
        if visibility is not None:
            if visibility not in VISIBILITIES:
                raise errors.ValidationError(
                    f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}",
                    input="visibility",
                    rule="private, shared or public",
                )
            changes["board_visibility"] = visibility
        if cover_image is not None:
            changes["cover_image_name"] = image_name_of(cover_image, input="cover_image")
        board_id = await self.resolve(board, verify=False)
        if board_id == UNCATEGORIZED:
            raise errors.BoardError("the uncategorized pseudo-board cannot be changed")
        if not changes:
            return await self._get_by_id(board_id)
        if visibility is not None:
            await self._require("board_visibility")
        with naming("board", board_id, action="change", not_found=errors.BoardNotFoundError):
            answer = await self._http.request(
                "PATCH", f"{BOARDS}/{board_id}", json=changes, retry=True
            )
        return parse(Board, answer)

    async def rename(self, board: BoardRef, name: str) -> Board:
        """Give a board a new name."""
        return await self.update(board, name=name)

    async def archive(self, board: BoardRef) -> Board:
        """Archive a board: it leaves the default listings but keeps its images."""
        return await self.update(board, archived=True)

    async def unarchive(self, board: BoardRef) -> Board:
        """Bring an archived board back into the listings."""
        return await self.update(board, archived=False)

    async def delete(self, board: BoardRef, *, delete_images: bool = False) -> DeleteBoardResult:
        """Delete a board. Its images are kept (uncategorized) unless ``delete_images``."""
        check_bool("delete_images", delete_images)
        board_id = await self.resolve(board, verify=False)
        if board_id == UNCATEGORIZED:
            raise errors.BoardError(
                "the uncategorized pseudo-board cannot be deleted; use "
                "client.images.delete_uncategorized() to delete its images"
            )
        with naming("board", board_id, action="delete", not_found=errors.BoardNotFoundError):
            answer = await self._http.request(
                "DELETE",
                f"{BOARDS}/{board_id}",
                params={"include_images": delete_images},
                retry=not delete_images,
            )
        return parse(DeleteBoardResult, answer)

    # -- images on boards ----------------------------------------------------------------

    async def image_names(
        self,
        board: BoardRef,
        *,
        categories: str | Iterable[str] | None = None,
        intermediate: bool | None = None,
    ) -> builtins.list[str]:
        """Names of the images on a board (``UNCATEGORIZED``: images on no board)."""
        cats = check_categories(categories)
        if intermediate is not None:
            check_bool("intermediate", intermediate)
        board_id = await self.resolve(board, verify=False)
        with naming("board", board_id, action="access", not_found=errors.BoardNotFoundError):
            answer = await self._http.request(
                "GET",
                f"{BOARDS}/{board_id}/image_names",
                params={"categories": cats, "is_intermediate": intermediate},
            )
        return strings(answer)

    async def add_images(self, board: BoardRef, images: ImagesArg) -> ImagesResult:
        """Put images on a board (moving them off their old board)."""
        names = image_names_of(images)  # checked before the board is looked up
        board_id = await self.resolve(board, verify=False)
        if board_id == UNCATEGORIZED:
            return await self.remove_images(names)
        board_errors = naming(
            "board", board_id, action="add images to", not_found=errors.BoardNotFoundError
        )
        if len(names) == 1:
            async with self._naming_unknown_image(names[0]):
                with board_errors:
                    answer = await self._http.request(
                        "POST",
                        f"{BOARD_IMAGES}/",
                        json={"board_id": board_id, "image_name": names[0]},
                    )
            return ImagesResult.from_server(answer, "added_images")
        result = ImagesResult()
        with board_errors:
            async for answer in self._post_chunks(
                f"{BOARD_IMAGES}/batch", "image_names", names, board_id=board_id
            ):
                result = result.merge(ImagesResult.from_server(answer, "added_images"))
        return result

    async def remove_images(self, images: ImagesArg) -> ImagesResult:
        """Take images off whatever board they are on (they become uncategorized)."""
        names = image_names_of(images)
        if len(names) == 1:
            async with self._naming_unknown_image(names[0]):
                answer = await self._http.request(
                    "DELETE", f"{BOARD_IMAGES}/", json={"image_name": names[0]}, retry=False
                )
            return ImagesResult.from_server(answer, "removed_images")
        result = ImagesResult()
        async for answer in self._post_chunks(f"{BOARD_IMAGES}/batch/delete", "image_names", names):
            result = result.merge(ImagesResult.from_server(answer, "removed_images"))
        return result

    @asynccontextmanager
    async def _naming_unknown_image(self, name: str) -> AsyncIterator[None]:
        """InvokeAI answers a board change of an image it does not know with a bare 500;
        inside this block that becomes the NotFoundError naming the image."""
        try:
            yield
        except errors.InternalServerError:
            await read_image_record(self._http, name)  # raises NotFoundError naming it
            raise

