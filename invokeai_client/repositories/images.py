"""ImageRepository: upload, read, download, star, delete and list images.

Uploads are the one place the SDK sends image bytes: workflows upload their image inputs
through :meth:`ImageRepository.upload` (or an :class:`UploadScope` that deletes what it
uploaded). File reads and PIL encoding run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union, overload

import anyio

from .. import errors
from .._answers import page_offset, page_total, parse, parse_list
from .._checks import check_bool, check_seconds
from .._paging import MAX_PAGE_SIZE, Page, Paginator, offset_page
from .._scope import AsyncScope
from .._uploads import read_image_source, upload_image
from ..types.boards import UNCATEGORIZED, BoardRef
from ..types.images import EmbeddedWorkflow, ImageDTO, ImagesResult
from ..types.wire_events import BulkDownloadErrorEvent
from ._base import Repository, check_text, naming
from ._image_files import (
    BULK_DOWNLOAD_TIMEOUT,
    MAX_BULK_DOWNLOAD,
    fetch_bytes,
    fetch_file,
    request_bulk_download,
)
from ._image_names import (
    IMAGES,
    Category,
    HasImageName,
    ImageLike,
    ImagesArg,
    check_categories,
    check_image_name,
    check_listing,
    check_upload,
    image_name_of,
    image_names_of,
    read_image_record,
)

if TYPE_CHECKING:
    from .._context import ClientContext

log = logging.getLogger("invokeai_client")

__all__ = [
    "BULK_DOWNLOAD_TIMEOUT",
    "BoardResolver",
    "HasImageName",
    "ImageLike",
    "ImageRepository",
    "ImagesArg",
    "UploadScope",
    "UploadSource",
    "check_categories",
    "check_image_name",
    "image_name_of",
    "image_names_of",
]

UploadSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Any]
"""What :meth:`ImageRepository.upload` takes: a file path, encoded bytes, or a PIL image."""


class BoardResolver(Protocol):
    """What images need of boards: turning a ``board=`` argument into a board id
    (:meth:`~invokeai_client.repositories.boards.BoardRepository.resolve`)."""

    async def resolve(self, board: BoardRef, *, create: bool = False, verify: bool = True) -> str:
        """The board id of ``board`` (an id, a Board, a name or UNCATEGORIZED)."""
        ...


class ImageRepository(Repository):
    """Images of the server (``client.images``)."""

    def __init__(self, context: ClientContext, *, boards: BoardResolver) -> None:
        super().__init__(context)
        self._boards = boards

    # -- upload --------------------------------------------------------------------------

    async def upload(
        self,
        image: UploadSource,
        *,
        category: Category = "user",
        board: BoardRef | None = None,
        intermediate: bool = False,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        crop_visible: bool = False,
        resize_to: tuple[int, int] | None = None,
        filename: str | None = None,
    ) -> ImageDTO:
        """Upload an image; returns its record (with the name the server gave it).

        ``image`` is a file path, encoded image bytes (PNG, JPEG, WebP, GIF, BMP, TIFF) or a
        PIL image (sent as PNG). ``board`` takes a board id, :class:`Board` or name;
        ``metadata`` is stored with the image (a JSON object); ``resize_to=(w, h)`` lets the
        server resize it. Anything that is not an image is refused before it is sent.
        """
        check_upload(category, intermediate, crop_visible, session_id, filename, metadata,
                      resize_to)
        data, default_name, content_type, what = await read_image_source(image)
        board_id: str | None = None
        if board is not None:
            board_id = await self._boards.resolve(board, verify=False)
            if board_id == UNCATEGORIZED:
                board_id = None
        board_errors = (
            naming("board", board_id, action="upload to", not_found=errors.BoardNotFoundError)
            if board_id is not None
            else nullcontext()
        )
        try:
            with board_errors:
                answer = await upload_image(
                    self._http,
                    data,
                    filename=filename or default_name,
                    content_type=content_type,
                    image_category=category,
                    is_intermediate=intermediate,
                    board_id=board_id,
                    session_id=session_id,
                    metadata=metadata,
                    crop_visible=crop_visible,
                    resize_to=resize_to,
                )
        except errors.APIError as exc:
            if exc.status == 415:
                raise exc.reworded(
                    f"the server refused {what}: it could not read it as an image "
                    f"({errors.describe_detail(exc.detail)})",
                    kind=errors.APIError,
                ) from None
            raise
        return parse(ImageDTO, answer)

    @asynccontextmanager
    async def uploading(self, image: UploadSource, **options: Any) -> AsyncIterator[ImageDTO]:
        """Upload an image for the duration of a block; it is deleted when the block ends.

        ``async with client.images.uploading("in.png") as img: ...`` (options as
        :meth:`upload`).
        """
        async with self.upload_scope() as scope:
            yield await scope.upload(image, **options)

    def upload_scope(self) -> UploadScope:
        """An :class:`UploadScope`: every image uploaded through it is deleted at the end."""
        return UploadScope(self)

    # -- reading -------------------------------------------------------------------------

    async def get(self, image: ImageLike) -> ImageDTO:
        """An image's record; :class:`~errors.NotFoundError` naming it if there is none."""
        return parse(ImageDTO, await read_image_record(self._http, image))

    async def get_many(self, images: ImagesArg) -> builtins.list[ImageDTO]:
        """Records of several images in the given order; unknown names are left out."""
        out: builtins.list[ImageDTO] = []
        names = image_names_of(images)
        if not (await self._context.features()).supports("image_names"):
            for name in names:  # before 6.0: one read per image
                with contextlib.suppress(errors.NotFoundError):
                    out.append(await self.get(name))
            return out
        async for answer in self._post_chunks(f"{IMAGES}/images_by_names", "image_names", names):
            out.extend(parse_list(ImageDTO, answer, missing_ok=True))
        return out

    async def exists(self, image: ImageLike) -> bool:
        """Whether the server has this image."""
        try:
            await self.get(image)
        except errors.NotFoundError:
            return False
        return True

    async def metadata(self, image: ImageLike) -> dict[str, Any] | None:
        """The metadata stored with an image (None when it has none)."""
        name = image_name_of(image)
        with naming("image", name, action="read"):
            answer = await self._http.request("GET", f"{IMAGES}/i/{name}/metadata")
        return answer if isinstance(answer, dict) else None

    async def workflow(self, image: ImageLike) -> EmbeddedWorkflow:
        """The workflow and graph saved in an image, parsed (both None when absent)."""
        name = image_name_of(image)
        with naming("image", name, action="read"):
            answer = await self._http.request("GET", f"{IMAGES}/i/{name}/workflow")
        return EmbeddedWorkflow.from_server(answer)

    def url(self, image: ImageLike, *, thumbnail: bool = False) -> str:
        """The absolute URL of an image (or its thumbnail) on this server."""
        name = image_name_of(image)
        kind = "thumbnail" if thumbnail else "full"
        return str(self._http.url(f"{IMAGES}/i/{name}/{kind}"))

    def png_for_display(self, image: ImageLike) -> bytes | None:
        """The full image as PNG bytes by one BLOCKING read, or None when it cannot be had:
        for display hooks (IPython's ``_repr_png_``), which cannot await. Never in async code."""
        from .._display import fetch_png

        return fetch_png(self._http, self.url(image))

    @overload
    async def download(
        self, image: ImageLike, dest: None = None, *, thumbnail: bool = False,
        overwrite: bool = False,
    ) -> bytes: ...

    @overload
    async def download(
        self, image: ImageLike, dest: str | os.PathLike[str], *, thumbnail: bool = False,
        overwrite: bool = False,
    ) -> Path: ...

    async def download(
        self,
        image: ImageLike,
        dest: str | os.PathLike[str] | None = None,
        *,
        thumbnail: bool = False,
        overwrite: bool = False,
    ) -> bytes | Path:
        """The image file: as bytes (no ``dest``), or streamed into ``dest`` (returns the path).

        ``dest`` may be a folder (the file is named after the image, made safe as
        :func:`~invokeai_client.safe_file_name` says; thumbnails end in ``.webp``) or a file
        path in an existing folder. An existing file is refused unless ``overwrite=True``; a
        symlink in the folder is never followed; the file appears complete or not at all, and
        only once the bytes are known to be an image. Full images are PNG, thumbnails WebP.
        """
        name = image_name_of(image)
        check_bool("overwrite", overwrite)
        kind = "thumbnail" if thumbnail else "full"
        path = f"{IMAGES}/i/{name}/{kind}"
        file_name = f"{Path(name).stem}.webp" if thumbnail else name
        with naming("image", name, action="download"):
            if dest is None:
                return await fetch_bytes(self._http, path, "image")
            return await fetch_file(self._http, path, file_name, Path(dest), "image", overwrite)

    @overload
    async def download_zip(
        self,
        images: ImagesArg | None = None,
        *,
        board: BoardRef | None = None,
        dest: None = None,
        timeout: float | None = BULK_DOWNLOAD_TIMEOUT,  # noqa: ASYNC109 (like run.result)
        overwrite: bool = False,
    ) -> bytes: ...

    @overload
    async def download_zip(
        self,
        images: ImagesArg | None = None,
        *,
        board: BoardRef | None = None,
        dest: str | os.PathLike[str],
        timeout: float | None = BULK_DOWNLOAD_TIMEOUT,  # noqa: ASYNC109 (like run.result)
        overwrite: bool = False,
    ) -> Path: ...

    async def download_zip(
        self,
        images: ImagesArg | None = None,
        *,
        board: BoardRef | None = None,
        dest: str | os.PathLike[str] | None = None,
        timeout: float | None = BULK_DOWNLOAD_TIMEOUT,  # noqa: ASYNC109 (like run.result)
        overwrite: bool = False,
    ) -> bytes | Path:
        """Several images as one zip archive that the server builds (InvokeAI's bulk download):
        the given ``images`` (at most 1,000), or every image on ``board`` (intermediates too;
        a board id, name, :class:`Board` or ``UNCATEGORIZED``). Entries are named
        ``<category>/<image_name>``.

        Returns the archive's bytes, or streams it into ``dest`` (a folder gets the server's
        file name; an existing file is refused unless ``overwrite=True``) and returns the
        path. The server announces the finished archive only on
        the event stream, so this needs a client with ``events=True``. Raises
        :class:`~errors.BulkDownloadError` with the server's reason when it cannot build the
        archive, :class:`~errors.TimeoutError` after ``timeout`` seconds.
        """
        check_seconds("timeout", timeout, positive=True)
        body = await self._zip_body(images, board)
        if not self._context.events_enabled:
            raise errors.InvokeAIError(
                "download_zip needs the event stream (the server announces the archive only "
                "there): use a client with events=True"
            )
        item, event = await request_bulk_download(
            self._http, self._context.router, body, timeout
        )
        if isinstance(event, BulkDownloadErrorEvent):
            reason = event.error or "no reason given"
            if images is not None:  # the server does not say which image it missed
                known = {dto.image_name for dto in await self.get_many(body["image_names"])}
                absent = [name for name in body["image_names"] if name not in known]
                if absent:
                    more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
                    reason += f" (no such image: {', '.join(absent[:5])}{more})"
            raise errors.BulkDownloadError(
                f"the server could not build bulk download {item}: {reason}",
                item_name=item,
                error=event.error,
            )
        with naming("bulk download", item, action="download"):
            zip_path = f"{IMAGES}/download/{item}"
            if dest is None:
                return await fetch_bytes(self._http, zip_path, "zip")
            return await fetch_file(self._http, zip_path, item, Path(dest), "zip", overwrite)

    async def _zip_body(
        self, images: ImagesArg | None, board: BoardRef | None
    ) -> dict[str, Any]:
        """The bulk download request for ``images`` or ``board`` (exactly one), checked."""
        if (images is None) == (board is None):
            raise errors.ValidationError(
                "download_zip takes either images or board (exactly one of them)",
                input="images" if images is not None else "board",
                rule="images or board",
            )
        if images is None:
            assert board is not None
            return {"board_id": await self._boards.resolve(board)}
        names = image_names_of(images)
        if not names or len(names) > MAX_BULK_DOWNLOAD:
            raise errors.ValidationError(
                f"download_zip takes 1 to {MAX_BULK_DOWNLOAD} images, got {len(names)}",
                input="images",
                rule=f"1..{MAX_BULK_DOWNLOAD} images",
            )
        return {"image_names": names}

    @overload
    async def thumbnail(self, image: ImageLike, dest: None = None) -> bytes: ...

    @overload
    async def thumbnail(
        self, image: ImageLike, dest: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path: ...

    async def thumbnail(
        self, image: ImageLike, dest: str | os.PathLike[str] | None = None, *,
        overwrite: bool = False,
    ) -> bytes | Path:
        """The image's WebP thumbnail, as bytes or saved into ``dest`` (see :meth:`download`)."""
        if dest is None:
            return await self.download(image, thumbnail=True)
        return await self.download(image, dest, thumbnail=True, overwrite=overwrite)

    # -- changing ------------------------------------------------------------------------

    async def update(
        self,
        image: ImageLike,
        *,
        category: Category | None = None,
        intermediate: bool | None = None,
        starred: bool | None = None,
        session_id: str | None = None,
    ) -> ImageDTO:
        """Change an image's category, intermediate flag, star or session id."""
        name = image_name_of(image)
        changes: dict[str, Any] = {}
        if category is not None:
            check_categories(category)
            changes["image_category"] = category
        if intermediate is not None:
            changes["is_intermediate"] = check_bool("intermediate", intermediate)
        if starred is not None:
            changes["starred"] = check_bool("starred", starred)
        if session_id is not None:
            changes["session_id"] = check_text("session_id", session_id)
        if not changes:
            return await self.get(name)
        try:
            with naming("image", name, action="change"):
                answer = await self._http.request(
                    "PATCH", f"{IMAGES}/i/{name}", json=changes, retry=True
                )
        except errors.BadRequestError:
            await self.get(name)  # InvokeAI answers 400 for an unknown image: name it
            raise
        return parse(ImageDTO, answer)

    async def star(self, images: ImagesArg) -> ImagesResult:
        """Star images (starred images list first)."""
        return await self._bulk("star", images, "starred_images")

    async def unstar(self, images: ImagesArg) -> ImagesResult:
        """Remove the star from images."""
        return await self._bulk("unstar", images, "unstarred_images")

    async def delete(self, image: ImageLike) -> ImagesResult:
        """Delete one image; :class:`~errors.NotFoundError` naming it if there is none."""
        name = image_name_of(image)
        with naming("image", name, action="delete"):
            answer = await self._http.request("DELETE", f"{IMAGES}/i/{name}")
        return ImagesResult.from_server(answer, "deleted_images")

    async def delete_many(self, images: ImagesArg) -> ImagesResult:
        """Delete several images (unknown names are skipped, as the server does)."""
        return await self._bulk("delete", images, "deleted_images")

    async def delete_uncategorized(self) -> ImagesResult:
        """Delete every image that is on no board (a non-admin: only their own; 5.15+)."""
        await self._require("images_delete_uncategorized")
        answer = await self._http.request("DELETE", f"{IMAGES}/uncategorized")
        return ImagesResult.from_server(answer, "deleted_images")

    async def _bulk(self, action: str, images: ImagesArg, done_key: str) -> ImagesResult:
        result = ImagesResult()
        names = image_names_of(images)
        async for answer in self._post_chunks(f"{IMAGES}/{action}", "image_names", names):
            result = result.merge(ImagesResult.from_server(answer, done_key))
        return result

    # -- listing -------------------------------------------------------------------------

    def list(
        self,
        *,
        board: BoardRef | None = None,
        category: str | Iterable[str] | None = None,
        starred: bool | None = None,
        search: str | None = None,
        intermediate: bool | None = False,
        origin: Literal["internal", "external"] | None = None,
        order: Literal["desc", "asc"] = "desc",
        starred_first: bool = True,
        page_size: int = 100,
    ) -> Paginator[ImageDTO]:
        """Images page by page, newest first: ``await`` it for the first page, ``async for``
        for every image exactly once.

        ``board`` takes an id, :class:`Board`, name or ``UNCATEGORIZED``; ``category`` one or
        more categories; ``search`` matches the metadata text; ``intermediate=None`` lists
        intermediates too; ``starred=True`` only starred images, ``False`` only unstarred.
        """
        cats = check_listing(category, order, origin, starred, intermediate)
        if starred is True:
            starred_first = True  # starred images come first: stop at the first unstarred
        resolved: builtins.list[str] = []

        async def fetch(offset: int, limit: int) -> Page[ImageDTO]:
            if board is not None and not resolved:
                resolved.append(await self._boards.resolve(board, verify=False))
            params: dict[str, Any] = {
                "offset": offset,
                "limit": min(limit, MAX_PAGE_SIZE),
                "categories": cats,
                "is_intermediate": intermediate,
                "board_id": resolved[0] if resolved else None,
                "order_dir": order.upper(),
                "starred_first": starred_first,
                "search_term": search or None,
                "image_origin": origin,
            }
            board_ident = resolved[0] if resolved else None
            with naming("board", board_ident, action="list images of",
                        not_found=errors.BoardNotFoundError):
                answer = await self._http.request("GET", f"{IMAGES}/", params=params)
            items = parse_list(ImageDTO, answer, key="items", missing_ok=True)
            return offset_page(
                items, offset=page_offset(answer, offset), limit=limit,
                total=page_total(answer),
            )

        return Paginator(
            fetch,
            page_size=page_size,
            key=lambda image: image.image_name,
            where=(lambda image: not image.starred) if starred is False else None,
            until=(lambda image: not image.starred) if starred is True else None,
        )

    # -- intermediates -------------------------------------------------------------------

    async def intermediates_count(self) -> int:
        """How many intermediate images the server keeps (a non-admin: their own)."""
        return int(await self._http.request("GET", f"{IMAGES}/intermediates") or 0)

    async def clear_intermediates(self) -> int:
        """Delete every intermediate image (admin); returns how many were deleted."""
        return int(await self._http.request("DELETE", f"{IMAGES}/intermediates") or 0)


class UploadScope(AsyncScope):
    """Uploads that are deleted together when the scope ends.

    .. code-block:: python

        async with client.images.upload_scope() as scope:
            a = await scope.upload("a.png")
            b = await scope.upload(pil_image, board="inputs")
            ...                                 # both are deleted when the block ends

    ``keep(image)`` exempts an image; ``adopt(image)`` adds one uploaded elsewhere. Deleting
    is shielded from cancellation and never hides the block's own exception.
    """

    def __init__(self, images: ImageRepository) -> None:
        self._images = images
        self.uploaded: builtins.list[ImageDTO] = []
        self._names: builtins.list[str] = []

    async def upload(self, image: UploadSource, **options: Any) -> ImageDTO:
        """Upload like :meth:`ImageRepository.upload`, and remember it for deletion."""
        dto = await self._images.upload(image, **options)
        self.uploaded.append(dto)
        self._names.append(dto.image_name)
        return dto

    def adopt(self, image: ImageLike) -> None:
        """Delete this image with the scope too."""
        self._names.extend(n for n in image_names_of(image) if n not in self._names)

    def keep(self, image: ImageLike) -> None:
        """Do not delete this image when the scope ends."""
        for name in image_names_of(image):
            if name in self._names:
                self._names.remove(name)

    @property
    def names(self) -> builtins.list[str]:
        """Names the scope will delete."""
        return builtins.list(self._names)

    async def cleanup(self) -> ImagesResult:
        """Delete everything uploaded (or adopted) so far."""
        names, self._names = self._names, []
        if not names:
            return ImagesResult()
        result = ImagesResult()
        with anyio.CancelScope(shield=True):
            result = await self._images.delete_many(names)
        return result

    async def _leave(self, exc: BaseException | None) -> None:
        try:
            await self.cleanup()
        except errors.InvokeAIError as cleanup_error:
            if exc is None:
                raise
            log.warning("could not delete uploaded images: %s", cleanup_error)
