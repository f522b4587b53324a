"""The double's images: ``/api/v1/images`` as InvokeAI 6.14 serves it.

Images are real PNGs (Pillow) kept in ``double.images`` (shared with the queue, whose nodes
save images there too), so sizes are real and thumbnails are real WebP files. Uploads read
the ``invokeai_metadata`` / ``invokeai_workflow`` / ``invokeai_graph`` text chunks of a PNG
like the server does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .auth import is_owner_or_admin
from .boards import (
    may_modify_image,
    may_read_image,
    read_board,
)
from .http import error, json_body, json_response, missing
from .image_files import (
    bool_query,
    decode_upload,
    json_dict,
    resize_to,
    thumbnail,
    upload_form,
    valid_graph,
    valid_workflow,
    zip_files,
)
from .records import DoubleImage, db_timestamp

if TYPE_CHECKING:
    from .app import DoubleApp

IMAGES = "/api/v1/images"
CATEGORIES = ("general", "mask", "control", "user", "other")
MAX_BATCH = 1000


def install(double: DoubleApp) -> None:
    """Add the image routes to ``double``."""
    routes = _Routes(double)
    double.route("POST", f"{IMAGES}/upload", routes.upload)
    double.route("GET", f"{IMAGES}/", routes.list_images)
    double.route("GET", f"{IMAGES}/names", routes.names)
    double.route("POST", f"{IMAGES}/images_by_names", routes.by_names)
    double.route("GET", f"{IMAGES}/intermediates", routes.intermediates_count)
    double.route("DELETE", f"{IMAGES}/intermediates", routes.clear_intermediates)
    double.route("DELETE", f"{IMAGES}/uncategorized", routes.delete_uncategorized)
    double.route("POST", f"{IMAGES}/delete", routes.delete_many)
    double.route("POST", f"{IMAGES}/star", routes.star)
    double.route("POST", f"{IMAGES}/unstar", routes.unstar)
    double.route("GET", f"{IMAGES}/i/{{image_name}}", routes.get)
    double.route("PATCH", f"{IMAGES}/i/{{image_name}}", routes.update)
    double.route("DELETE", f"{IMAGES}/i/{{image_name}}", routes.delete)
    double.route("GET", f"{IMAGES}/i/{{image_name}}/full", routes.full)
    double.route("HEAD", f"{IMAGES}/i/{{image_name}}/full", routes.full)
    double.route("GET", f"{IMAGES}/i/{{image_name}}/thumbnail", routes.thumbnail)
    double.route("GET", f"{IMAGES}/i/{{image_name}}/metadata", routes.metadata)
    double.route("GET", f"{IMAGES}/i/{{image_name}}/workflow", routes.workflow)
    double.route("GET", f"{IMAGES}/i/{{image_name}}/urls", routes.urls)
    double.route("POST", f"{IMAGES}/download", routes.bulk_download)
    double.route("GET", f"{IMAGES}/download/{{item_name}}", routes.bulk_download_item)


def image_dto(image: DoubleImage) -> dict[str, Any]:
    """The ImageDTO of a stored image."""
    name = image.image_name
    return {
        "image_name": name,
        "image_url": f"api/v1/images/i/{name}/full",
        "thumbnail_url": f"api/v1/images/i/{name}/thumbnail",
        "image_origin": image.image_origin,
        "image_category": image.image_category,
        "width": image.width,
        "height": image.height,
        "created_at": image.created_at,
        "updated_at": image.updated_at,
        "deleted_at": image.deleted_at,
        "is_intermediate": image.is_intermediate,
        "session_id": image.session_id,
        "node_id": image.node_id,
        "starred": image.starred,
        "has_workflow": image.workflow is not None or image.graph is not None,
        "image_subfolder": "",
        "board_id": image.board_id,
    }


class _Routes:
    def __init__(self, double: DoubleApp) -> None:
        self.d = double
        self._thumbs: dict[str, bytes] = {}
        self._zips: dict[str, tuple[str, bytes]] = {}  # bulk download name -> (owner, zip)

    # -- helpers -------------------------------------------------------------------------

    def _readable(self, request: web.Request, detail: str = "Not Found") -> DoubleImage:
        user = self.d.current_user(request)
        image = self.d.images.get(request.match_info["image_name"])
        if image is None:
            raise error(404, detail if user.get("is_admin") else "Image not found")
        if not may_read_image(self.d, user, image):
            raise error(403, "Not authorized to access this image")
        return image

    def _owned(self, request: web.Request) -> tuple[dict[str, Any], DoubleImage | None]:
        user = self.d.current_user(request)
        image = self.d.images.get(request.match_info["image_name"])
        if image is not None and not may_modify_image(self.d, user, image):
            raise error(403, "Not authorized to modify this image")
        if image is None and not user.get("is_admin"):
            raise error(403, "Not authorized to modify this image")
        return user, image

    async def _names_body(self, request: web.Request) -> list[str]:
        body = await json_body(request)
        names = body.get("image_names") if isinstance(body, dict) else None
        if not isinstance(names, list):
            raise missing(["body", "image_names"], body)
        if len(names) > MAX_BATCH:
            raise error(422, [{"type": "too_long", "loc": ["body", "image_names"],
                               "msg": f"List should have at most {MAX_BATCH} items"}])
        return [str(n) for n in dict.fromkeys(names)]

    # -- upload --------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        category = request.query.get("image_category")
        if category is None:
            raise missing(["query", "image_category"])
        if category not in CATEGORIES:
            raise error(422, [{"type": "enum", "loc": ["query", "image_category"],
                               "msg": "Input should be 'general', 'mask', 'control', 'user' "
                                      "or 'other'", "input": category}])
        intermediate = bool(bool_query(request, "is_intermediate", required=True))
        crop_visible = bool(bool_query(request, "crop_visible"))
        board_id = request.query.get("board_id")
        if board_id is not None:
            self._check_upload_board(user, board_id)
        content_type, data, metadata_text, resize_text = await upload_form(request)
        if not content_type.startswith("image"):
            raise error(415, "Not an image")
        resize = resize_to(resize_text) if resize_text else None
        try:
            png, width, height, info = await asyncio.to_thread(
                decode_upload, data, crop_visible, resize
            )
        except Exception:
            raise error(415, "Failed to read image") from None
        metadata_raw = metadata_text if metadata_text is not None else info.get(
            "invokeai_metadata"
        )
        image = DoubleImage(
            image_name=f"{uuid.uuid4()}.png",
            data=png,
            width=width,
            height=height,
            image_origin="external",
            image_category=category,
            is_intermediate=intermediate,
            session_id=request.query.get("session_id"),
            board_id=board_id,
            metadata=json_dict(metadata_raw),
            workflow=valid_workflow(info.get("invokeai_workflow")),
            graph=valid_graph(info.get("invokeai_graph")),
            user_id=user["user_id"],
        )
        self.d.images[image.image_name] = image
        location = f"api/v1/images/i/{image.image_name}/full"
        return json_response(image_dto(image), 201, headers={"Location": location})

    def _check_upload_board(self, user: dict[str, Any], board_id: str) -> None:
        board = self.d.boards.get(board_id)
        if board is None:
            raise error(404, "Board not found")
        if not (is_owner_or_admin(user, board["user_id"])
                or board["board_visibility"] == "public"):
            raise error(403, "Not authorized to upload to this board")

    # -- listing -------------------------------------------------------------------------

    def _filtered(self, request: web.Request, user: dict[str, Any]) -> list[DoubleImage]:
        q = request.query
        categories = q.getall("categories", [])
        intermediate = bool_query(request, "is_intermediate")
        board_id = q.get("board_id")
        origin = q.get("image_origin")
        search = (q.get("search_term") or "").lower()
        if board_id is not None and board_id != "none":
            read_board(self.d, user, board_id)
        own_only = not user.get("is_admin") and (board_id is None or board_id == "none")
        order = {name: n for n, name in enumerate(self.d.images)}
        found = [
            i for i in self.d.images.values()
            if (not categories or i.image_category in categories)
            and (intermediate is None or i.is_intermediate == intermediate)
            and (origin is None or i.image_origin == origin)
            and (board_id is None or (i.board_id or "none") == board_id)
            and (not own_only or i.user_id == user["user_id"])
            and (not search or search in json.dumps(i.metadata or {}).lower()
                 or search in i.created_at)
        ]
        descending = q.get("order_dir", "DESC") == "DESC"
        # ties (same millisecond) fall back to creation order, as SQLite's rowid would
        found.sort(key=lambda i: (i.created_at, order[i.image_name]), reverse=descending)
        if bool_query(request, "starred_first") is not False:
            found.sort(key=lambda i: not i.starred)  # stable: starred first, order kept
        return found

    async def list_images(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 10))
        if limit > MAX_BATCH or limit < 0 or offset < 0:
            raise error(422, [{"type": "less_than_equal", "loc": ["query", "limit"],
                               "msg": f"Input should be less than or equal to {MAX_BATCH}"}])
        found = self._filtered(request, user)
        items = [image_dto(i) for i in found[offset : offset + limit]]
        return json_response({"limit": limit, "offset": offset, "total": len(found),
                              "items": items})

    async def names(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        found = self._filtered(request, user)
        return json_response({
            "image_names": [i.image_name for i in found],
            "starred_count": sum(1 for i in found if i.starred),
            "total_count": len(found),
        })

    async def by_names(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        names = await self._names_body(request)
        out = []
        for name in names:
            image = self.d.images.get(name)
            if image is not None and may_read_image(self.d, user, image):
                out.append(image_dto(image))
        return json_response(out)

    # -- one image -----------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        return json_response(image_dto(self._readable(request)))

    async def update(self, request: web.Request) -> web.Response:
        _, image = self._owned(request)
        body = await json_body(request)
        if image is None or not isinstance(body, dict):
            raise error(400, "Failed to update image")
        if "image_category" in body and body["image_category"] is not None:
            if body["image_category"] not in CATEGORIES:
                raise error(422, [{"type": "enum", "loc": ["body", "image_category"],
                                   "msg": "Input should be a known category"}])
            image.image_category = body["image_category"]
        if body.get("session_id") is not None:
            image.session_id = body["session_id"]
        if body.get("is_intermediate") is not None:
            image.is_intermediate = bool(body["is_intermediate"])
        if body.get("starred") is not None:
            image.starred = bool(body["starred"])
        image.updated_at = db_timestamp()
        return json_response(image_dto(image))

    async def delete(self, request: web.Request) -> web.Response:
        _, image = self._owned(request)
        if image is None:
            raise error(404, "Image not found")
        del self.d.images[image.image_name]
        self._thumbs.pop(image.image_name, None)
        return json_response({"affected_boards": [image.board_id or "none"],
                              "deleted_images": [image.image_name], "failed_images": []})

    async def full(self, request: web.Request) -> web.StreamResponse:
        image = self._readable(request)
        headers = {
            "Cache-Control": "private, no-store" if self.d.multiuser else "max-age=31536000",
            "Content-Disposition": f'inline; filename="{image.image_name}"',
        }
        if request.method == "HEAD":
            return web.Response(content_type="image/png", headers=headers)
        return web.Response(body=image.data, content_type="image/png", headers=headers)

    async def thumbnail(self, request: web.Request) -> web.Response:
        image = self._readable(request)
        data = self._thumbs.get(image.image_name)
        if data is None:
            data = await asyncio.to_thread(thumbnail, image.data)
            self._thumbs[image.image_name] = data
        return web.Response(body=data, content_type="image/webp")

    async def metadata(self, request: web.Request) -> web.Response:
        return json_response(self._readable(request).metadata)

    async def workflow(self, request: web.Request) -> web.Response:
        image = self._readable(request)
        return json_response({"workflow": image.workflow, "graph": image.graph})

    async def urls(self, request: web.Request) -> web.Response:
        self.d.current_user(request)
        name = request.match_info["image_name"]
        return json_response({"image_name": name,
                              "image_url": f"api/v1/images/i/{name}/full",
                              "thumbnail_url": f"api/v1/images/i/{name}/thumbnail"})

    # -- several images ------------------------------------------------------------------

    async def _each(
        self, request: web.Request, done_key: str, change: Any
    ) -> web.Response:
        user = self.d.current_user(request)
        names = await self._names_body(request)
        done: list[str] = []
        boards: set[str] = set()
        for name in names:
            image = self.d.images.get(name)
            if image is None or not may_modify_image(self.d, user, image):
                continue
            change(image)
            done.append(name)
            boards.add(image.board_id or "none")
        return json_response({"affected_boards": sorted(boards), done_key: done,
                              "failed_images": []})

    async def delete_many(self, request: web.Request) -> web.Response:
        def remove(image: DoubleImage) -> None:
            self.d.images.pop(image.image_name, None)
            self._thumbs.pop(image.image_name, None)

        return await self._each(request, "deleted_images", remove)

    async def star(self, request: web.Request) -> web.Response:
        def star(image: DoubleImage) -> None:
            image.starred = True
            image.updated_at = db_timestamp()

        return await self._each(request, "starred_images", star)

    async def unstar(self, request: web.Request) -> web.Response:
        def unstar(image: DoubleImage) -> None:
            image.starred = False
            image.updated_at = db_timestamp()

        return await self._each(request, "unstarred_images", unstar)

    async def delete_uncategorized(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        deleted = []
        for image in list(self.d.images.values()):
            mine = is_owner_or_admin(user, image.user_id)
            if image.board_id is None and mine:
                del self.d.images[image.image_name]
                deleted.append(image.image_name)
        return json_response({"affected_boards": ["none"] if deleted else [],
                              "deleted_images": deleted, "failed_images": []})

    # -- intermediates -------------------------------------------------------------------

    async def intermediates_count(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        count = sum(
            1 for i in self.d.images.values()
            if i.is_intermediate and is_owner_or_admin(user, i.user_id)
        )
        return json_response(count)

    async def clear_intermediates(self, request: web.Request) -> web.Response:
        user = self.d.current_user(request)
        if not user.get("is_admin"):
            raise error(403, "Only admins can clear all intermediates")
        doomed = [n for n, i in self.d.images.items() if i.is_intermediate]
        for name in doomed:
            del self.d.images[name]
        return json_response(len(doomed))

    # -- bulk download -------------------------------------------------------------------

    async def bulk_download(self, request: web.Request) -> web.Response:
        """``POST /download``: answers 202 at once and builds the zip afterwards, announcing
        it with ``bulk_download_*`` events, as InvokeAI does."""
        user = self.d.current_user(request)
        body = await json_body(request)
        body = body if isinstance(body, dict) else {}
        names, board_id = body.get("image_names"), body.get("board_id")
        if not names and board_id is None:
            raise error(400, "No images or board id specified.")
        if names is not None and (not isinstance(names, list) or len(names) > MAX_BATCH):
            raise error(422, [{"type": "too_long", "loc": ["body", "image_names"],
                               "msg": f"List should have at most {MAX_BATCH} items"}])
        prefix = ""
        if board_id:
            if board_id == "none":
                prefix = "Uncategorized_"
            else:
                board = read_board(self.d, user, str(board_id))
                clean = "".join(c for c in board["board_name"] if c.isalnum() or c in " _-")
                prefix = f"{clean.rstrip()}_"
        for name in names or []:
            image = self.d.images.get(str(name))
            if image is not None and not may_read_image(self.d, user, image):
                raise error(403, "Not authorized to access this image")
        item_id = f"{prefix}{uuid.uuid4()}"
        self.d.spawn(self._build_zip(item_id, names, board_id, user["user_id"]))
        return json_response(
            {"response": "Your images are preparing to be downloaded",
             "bulk_download_item_name": f"{item_id}.zip"},
            status=202,
        )

    async def _build_zip(
        self, item_id: str, names: list[Any] | None, board_id: Any, user_id: str
    ) -> None:
        item_name = f"{item_id}.zip"
        event = {"bulk_download_id": "default", "bulk_download_item_id": item_id,
                 "bulk_download_item_name": item_name, "user_id": user_id}
        await self._emit_bulk("bulk_download_started", event, user_id)
        chosen: list[DoubleImage | None]
        if board_id:
            wanted = "" if board_id == "none" else board_id
            chosen = [i for i in self.d.images.values() if (i.board_id or "") == wanted]
        else:
            chosen = [self.d.images.get(str(name)) for name in names or []]
        if any(image is None for image in chosen):
            await self._emit_bulk(
                "bulk_download_error", {**event, "error": "Image record not found"}, user_id
            )
            return
        entries = [(f"{i.image_category}/{i.image_name}", i.data) for i in chosen if i is not None]
        self._zips[item_name] = (user_id, await asyncio.to_thread(zip_files, entries))
        await self._emit_bulk("bulk_download_complete", event, user_id)

    async def _emit_bulk(self, name: str, data: dict[str, Any], user_id: str) -> None:
        # InvokeAI's rooms: the user's own and the admins' in multi-user mode, else "default".
        if user_id != "system":
            await self.d.emit(name, data, room=f"user:{user_id}")
            await self.d.emit(name, data, room="admin")
        else:
            await self.d.emit(name, data, room="default")

    async def bulk_download_item(self, request: web.Request) -> web.Response:
        """``GET /download/{name}``: the zip, for its owner or an admin, once."""
        user = self.d.current_user(request)
        item_name = request.match_info["item_name"]
        found = self._zips.get(item_name)
        if found is None:
            raise error(404, "Not Found")
        owner, data = found
        if owner != user["user_id"] and not user.get("is_admin"):
            raise error(403, "Not authorized to access this download")
        del self._zips[item_name]  # InvokeAI deletes the file after the first download
        return web.Response(
            body=data, content_type="application/zip",
            headers={"Content-Disposition": f'inline; filename="{item_name}"'},
        )
