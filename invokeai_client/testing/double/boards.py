"""The double's boards: ``/api/v1/boards`` and ``/api/v1/board_images``, as InvokeAI 6.14.

Boards live in ``double.boards`` (id -> record); an image is on a board when its
``DoubleImage.board_id`` says so. Access follows the real server: admins see everything,
others their own boards plus shared and public ones; only owners (and admins) change or
delete a board.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .auth import is_owner_or_admin
from .http import error, json_body, json_response, missing
from .records import DoubleImage, db_timestamp

if TYPE_CHECKING:
    from .app import DoubleApp

ASSET_CATEGORIES = ("control", "mask", "user", "other")
BOARD_CHANGE_FIELDS = ("board_name", "cover_image_name", "archived", "board_visibility")
VISIBILITIES = ("private", "shared", "public")


def install(double: DoubleApp) -> None:
    """Add the board routes to ``double``."""
    routes = _Routes(double)
    double.route("POST", "/api/v1/boards/", routes.create)
    double.route("GET", "/api/v1/boards/", routes.list_boards)
    double.route("GET", "/api/v1/boards/{board_id}", routes.get)
    double.route("PATCH", "/api/v1/boards/{board_id}", routes.update)
    double.route("DELETE", "/api/v1/boards/{board_id}", routes.delete)
    double.route("GET", "/api/v1/boards/{board_id}/image_names", routes.image_names)
    double.route("POST", "/api/v1/board_images/", routes.add_image)
    double.route("DELETE", "/api/v1/board_images/", routes.remove_image)
    double.route("POST", "/api/v1/board_images/batch", routes.add_images)
    double.route("POST", "/api/v1/board_images/batch/delete", routes.remove_images)


def add_board(double: DoubleApp, name: str, *, user_id: str = "system") -> dict[str, Any]:
    """Create a board record on the double (what ``POST /boards/`` does)."""
    now = db_timestamp()
    record: dict[str, Any] = {
        "board_id": str(uuid.uuid4()),
        "board_name": name,
        "user_id": user_id,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "cover_image_name": None,
        "archived": False,
        "board_visibility": "private",
    }
    double.boards[record["board_id"]] = record
    return record


def board_dto(double: DoubleApp, record: dict[str, Any]) -> dict[str, Any]:
    """A board record with its counts and cover, as the server sends BoardDTO."""
    on_board = [
        i for i in double.images.values()
        if i.board_id == record["board_id"] and not i.is_intermediate
    ]
    cover = record.get("cover_image_name")
    if cover is None and on_board:
        cover = max(on_board, key=lambda i: (i.starred, i.created_at)).image_name
    owner = next(
        (u for u in double.users.values() if u["user_id"] == record["user_id"]), None
    )
    return {
        **record,
        "cover_image_name": cover,
        "cover_video_name": None,
        "image_count": sum(1 for i in on_board if i.image_category == "general"),
        "video_count": 0,
        "asset_count": sum(1 for i in on_board if i.image_category in ASSET_CATEGORIES),
        "owner_username": owner["display_name"] if owner else None,
    }


def may_read_board(user: dict[str, Any], record: dict[str, Any]) -> bool:
    return may_write_board(user, record) or record["board_visibility"] in ("shared", "public")


def may_write_board(user: dict[str, Any], record: dict[str, Any]) -> bool:
    return is_owner_or_admin(user, record["user_id"])


def read_board(double: DoubleApp, user: dict[str, Any], board_id: str) -> dict[str, Any]:
    """The board a user may read, or the server's 404/403."""
    record = double.boards.get(board_id)
    if record is None:
        raise error(404, "Board not found")
    if not may_read_board(user, record):
        raise error(403, "Not authorized to access this board")
    return record


def may_modify_image(double: DoubleApp, user: dict[str, Any], image: DoubleImage) -> bool:
    """Owner, board owner, public board, or admin: the rules of InvokeAI's image mutations."""
    if is_owner_or_admin(user, image.user_id):
        return True
    board = double.boards.get(image.board_id or "")
    return board is not None and (
        board["user_id"] == user["user_id"] or board["board_visibility"] == "public"
    )


def may_read_image(double: DoubleApp, user: dict[str, Any], image: DoubleImage) -> bool:
    if is_owner_or_admin(user, image.user_id):
        return True
    board = double.boards.get(image.board_id or "")
    return board is not None and board["board_visibility"] in ("shared", "public")


def _body_field(body: Any, name: str, loc: str = "body") -> Any:
    if not isinstance(body, dict) or name not in body:
        raise missing([loc, name], body)
    return body[name]


class _Routes:
    def __init__(self, double: DoubleApp) -> None:
        self.d = double

    async def create(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        name = request.query.get("board_name")
        if name is None:
            raise missing(["query", "board_name"])
        if len(name) > 300:
            raise error(422, [{"type": "string_too_long", "loc": ["query", "board_name"],
                               "msg": "String should have at most 300 characters",
                               "input": name, "ctx": {"max_length": 300}}])
        record = add_board(self.d, name, user_id=user["user_id"])
        return json_response(board_dto(self.d, record), 201)

    async def list_boards(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        q = request.query
        include_archived = q.get("include_archived", "false") == "true"
        order_by = q.get("order_by", "created_at")
        descending = q.get("direction", "DESC") == "DESC"
        boards = [
            (n, b) for n, b in enumerate(self.d.boards.values())
            if may_read_board(user, b) and (include_archived or not b["archived"])
        ]
        # ties (same millisecond) fall back to creation order, as SQLite's rowid would
        if order_by == "board_name":
            boards.sort(key=lambda nb: (nb[1]["board_name"].lower(), nb[0]), reverse=descending)
        else:
            boards.sort(key=lambda nb: (nb[1]["created_at"], nb[0]), reverse=descending)
        dtos = [board_dto(self.d, b) for _, b in boards]
        if q.get("all") == "true":
            return json_response(dtos)
        if "offset" in q and "limit" in q:
            offset, limit = int(q["offset"]), int(q["limit"])
            page = dtos[offset : offset + limit]
            # Like InvokeAI 6.14: "total" is the length of this page, not the board count.
            return json_response({"limit": limit, "offset": offset, "total": len(page),
                                  "items": page})
        raise error(400, "Invalid request: Must provide either 'all' or both 'offset' and 'limit'")

    async def get(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        record = read_board(self.d, user, request.match_info["board_id"])
        return json_response(board_dto(self.d, record))

    async def update(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        body = await json_body(request)
        extra = [k for k in (body or {}) if k not in BOARD_CHANGE_FIELDS]
        if not isinstance(body, dict) or extra:
            raise error(422, [{"type": "extra_forbidden", "loc": ["body", k],
                               "msg": "Extra inputs are not permitted"} for k in extra])
        if "board_visibility" in body and body["board_visibility"] not in VISIBILITIES:
            raise error(422, [{"type": "enum", "loc": ["body", "board_visibility"],
                               "msg": "Input should be 'private', 'shared' or 'public'"}])
        record = self.d.boards.get(request.match_info["board_id"])
        if record is None:
            raise error(404, "Board not found")
        if not may_write_board(user, record):
            raise error(403, "Not authorized to update this board")
        for key, value in body.items():
            if value is not None:
                record[key] = value
        record["updated_at"] = db_timestamp()[:19]  # the server drops the fraction here
        return json_response(board_dto(self.d, record), 201)

    async def delete(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        board_id = request.match_info["board_id"]
        record = self.d.boards.get(board_id)
        if record is None:
            raise error(404, "Board not found")
        if not may_write_board(user, record):
            raise error(403, "Not authorized to delete this board")
        on_board = [i for i in self.d.images.values() if i.board_id == board_id]
        result: dict[str, Any] = {
            "board_id": board_id, "deleted_board_images": [], "deleted_images": [],
            "deleted_board_videos": [], "deleted_videos": [], "failed_images": [],
            "failed_videos": [],
        }
        if request.query.get("include_images") == "true":
            for image in on_board:
                if is_owner_or_admin(user, image.user_id):
                    del self.d.images[image.image_name]
                    result["deleted_images"].append(image.image_name)
                else:
                    image.board_id = None
        else:
            for image in on_board:
                image.board_id = None
                result["deleted_board_images"].append(image.image_name)
        del self.d.boards[board_id]
        return json_response(result)

    async def image_names(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        board_id = request.match_info["board_id"]
        if board_id != "none":
            read_board(self.d, user, board_id)
        categories = request.query.getall("categories", [])
        intermediate = request.query.get("is_intermediate")
        names = [
            i.image_name
            for i in sorted(self.d.images.values(), key=lambda i: i.created_at)
            if (i.board_id or "none") == board_id
            and (not categories or i.image_category in categories)
            and (intermediate is None or i.is_intermediate == (intermediate == "true"))
            and (board_id != "none" or is_owner_or_admin(user, i.user_id))
        ]
        return json_response(names)

    # -- board_images --------------------------------------------------------------------

    def _writable_board(self, user: dict[str, Any], board_id: str) -> dict[str, Any]:
        record = self.d.boards.get(board_id)
        if record is None:
            raise error(404, "Board not found")
        if not (may_write_board(user, record) or record["board_visibility"] == "public"):
            raise error(403, "Not authorized to modify this board")
        return record

    def _move(self, user: dict[str, Any], name: str, board_id: str | None) -> str | None:
        """Put an image on a board (None: off any board); the old board, or None if failed."""
        image = self.d.images.get(name)
        if image is None:
            return None
        if not is_owner_or_admin(user, image.user_id):
            return None
        old = image.board_id or "none"
        image.board_id = board_id
        return old

    async def _to_board(self, request: web.Request,
                        field: str) -> tuple[dict[str, Any], str, Any]:
        """The user, the board (one they may write to) and ``field`` of a request that puts
        images on a board."""
        user = self.d.current_user(request)
        body = await json_body(request)
        board_id = _body_field(body, "board_id")
        value = _body_field(body, field)
        self._writable_board(user, board_id)
        return user, board_id, value

    async def add_image(self, request: web.Request) -> web.Response:
        user, board_id, name = await self._to_board(request, "image_name")
        image = self.d.images.get(name)
        if image is not None and not is_owner_or_admin(user, image.user_id):
            raise error(403, "Not authorized to move this image")
        old = self._move(user, name, board_id)
        if old is None:
            raise error(500, "Failed to add image to board")
        return json_response({"affected_boards": [board_id, old], "added_images": [name],
                              "failed_images": []}, 201)

    async def remove_image(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        body = await json_body(request)
        name = _body_field(body, "image_name")
        image = self.d.images.get(name)
        if image is None:
            raise error(500, "Failed to remove image from board")
        old = image.board_id or "none"
        if old != "none":
            self._writable_board(user, old)
        image.board_id = None
        affected = ["none"] if old == "none" else ["none", old]
        return json_response({"affected_boards": affected, "removed_images": [name],
                              "failed_images": []}, 201)

    async def add_images(self, request: web.Request) -> web.Response:
        user, board_id, names = await self._to_board(request, "image_names")
        added: list[str] = []
        affected = {board_id}
        for name in dict.fromkeys(names):
            old = self._move(user, name, board_id)
            if old is not None:
                added.append(name)
                affected.add(old)
        return json_response({"affected_boards": sorted(affected), "added_images": added,
                              "failed_images": []}, 201)

    async def remove_images(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        body = await json_body(request)
        names = _body_field(body, "image_names")
        removed: list[str] = []
        affected: set[str] = set()
        for name in dict.fromkeys(names):
            image = self.d.images.get(name)
            if image is None:
                continue
            old = image.board_id or "none"
            board = self.d.boards.get(old)
            if board is not None and not (
                may_write_board(user, board) or board["board_visibility"] == "public"
            ):
                continue
            image.board_id = None
            removed.append(name)
            affected.update({"none", old})
        return json_response({"affected_boards": sorted(affected), "removed_images": removed,
                              "failed_images": []}, 201)
