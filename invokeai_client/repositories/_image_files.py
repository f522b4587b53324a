"""Image files: downloads streamed to disk, and the server-built zip of many images.

A download goes to a hidden ``.part`` file next to its target and is renamed into place when
complete, so a file appears whole or not at all; paths that would leave the target folder
are refused. The server announces a finished bulk download (zip) only on the event stream:
:class:`BulkDownloadWatcher` listens from before the request, so a fast answer is not missed.
"""

from __future__ import annotations

import builtins
import os
import re
import secrets
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .. import errors
from ..types.wire_events import (
    BulkDownloadCompleteEvent,
    BulkDownloadErrorEvent,
    BulkDownloadEvent,
    ServerEvent,
)
from ._image_names import IMAGES

if TYPE_CHECKING:
    from .._http import HttpTransport
    from .._router import EventRouter

DOWNLOAD_CHUNK = 256 * 1024
MAX_BULK_DOWNLOAD = 1000
"""Images one bulk download may name (InvokeAI's MAX_IMAGE_BATCH_SIZE)."""
BULK_DOWNLOAD_TIMEOUT = 300.0
SAFE_ARCHIVE_NAME = re.compile(r"^[\w -]+\.zip$")  # "<clean board name>_<uuid>.zip" or "<uuid>.zip"


async def fetch_file(
    http: HttpTransport, path: str, file_name: str, dest: str | os.PathLike[str] | None
) -> bytes | Path:
    """GET ``path`` as bytes, or stream it into ``dest`` (a folder gets ``file_name``);
    the file appears complete or not at all."""
    if dest is None:
        data: bytes = await http.request("GET", path, expect="bytes")
        return data
    target = await anyio.to_thread.run_sync(download_target, Path(dest), file_name)
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        async with (
            http.stream("GET", path) as response,
            await anyio.open_file(part, "wb") as out,
        ):
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                await out.write(chunk)
        await anyio.to_thread.run_sync(os.replace, part, target)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(unlink_quietly, part)
        raise
    return target


class BulkDownloadWatcher:
    """Keeps the client's bulk download events from before the POST is answered (the server
    may finish a small archive first), until the one for our archive arrives."""

    def __init__(self, router: EventRouter) -> None:
        self._done: dict[str, BulkDownloadEvent] = {}
        self._changed = anyio.Event()
        self._remove = router.add_listener(self._on_event)

    def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, (BulkDownloadCompleteEvent, BulkDownloadErrorEvent)):
            name = event.bulk_download_item_name
            if name is not None and len(self._done) < MAX_BULK_DOWNLOAD:
                self._done[name] = event
            self._changed.set()

    async def wait(self, item: str) -> BulkDownloadEvent:
        while item not in self._done:
            await self._changed.wait()
            self._changed = anyio.Event()
        return self._done[item]

    def close(self) -> None:
        self._remove()


def download_target(dest: Path, file_name: str) -> Path:
    """Where a download goes (runs in a worker thread); refuses paths outside ``dest``."""
    name = file_name
    if dest.is_dir():
        folder = dest.resolve()
        target = (folder / file_name).resolve()
        if target.parent != folder:
            raise errors.ValidationError(
                f"refusing to write image {name!r} outside {str(folder)!r}",
                input="image",
                rule="stays inside the target folder",
            )
        return target
    if not dest.parent.is_dir():
        raise errors.ValidationError(
            f"cannot save to {str(dest)!r}: folder {str(dest.parent)!r} does not exist",
            input="dest",
            rule="an existing folder or a file in one",
        )
    return dest.resolve()


def unlink_quietly(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


async def request_bulk_download(
    http: HttpTransport, router: EventRouter, body: dict[str, Any], ready_within: float | None
) -> tuple[str, BulkDownloadEvent]:
    """Ask the server to build a zip of ``body``'s images; wait for its event.

    Returns the archive's name and the event that ended it (complete or error); a
    :class:`~errors.TimeoutError` when none came within ``ready_within`` seconds.
    """
    watcher = BulkDownloadWatcher(router)
    try:
        answer = await http.request("POST", f"{IMAGES}/download", json=body)
        item = answer.get("bulk_download_item_name") if isinstance(answer, dict) else None
        if not isinstance(item, str) or not SAFE_ARCHIVE_NAME.match(item):
            raise errors.InvokeAIError(
                f"the server answered the bulk download with no usable archive name: "
                f"{answer!r:.200}"
            )
        try:
            with anyio.fail_after(ready_within):
                return item, await watcher.wait(item)
        except builtins.TimeoutError:
            raise errors.TimeoutError(
                f"bulk download {item} was not ready within {ready_within} s"
            ) from None
    finally:
        watcher.close()
