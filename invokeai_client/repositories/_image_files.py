"""Image files: downloads streamed to disk, and the server-built zip of many images.

Files are written by the rules of :mod:`invokeai_client._files` (safe names, no symlinks
followed, no overwrite unless asked, complete or not at all, content checked first). The
server announces a finished bulk download (zip) only on the event stream:
:class:`BulkDownloadWatcher` listens from before the request, so a fast answer is not missed.
"""

from __future__ import annotations

import builtins
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .. import errors
from .._files import AtomicFile, Content, check_content, plan_target
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

MAX_BULK_DOWNLOAD = 1000
"""Images one bulk download may name (InvokeAI's MAX_IMAGE_BATCH_SIZE)."""
BULK_DOWNLOAD_TIMEOUT = 300.0
SAFE_ARCHIVE_NAME = re.compile(r"^[\w -]+\.zip$")  # "<clean board name>_<uuid>.zip" or "<uuid>.zip"


async def fetch_bytes(http: HttpTransport, path: str, content: Content) -> bytes:
    """GET ``path`` into memory (at most ``max_response_size`` bytes, bounded like a
    download: see ``HttpTransport.stream``); the body must start like ``content``."""
    async with http.stream("GET", path, limit=http.max_response_size) as chunks:
        data = b"".join([chunk async for chunk in chunks])
    check_content(content, data[:16], method="GET", path=path)
    return data


async def fetch_file(
    http: HttpTransport, path: str, file_name: str, dest: Path, content: Content, overwrite: bool
) -> Path:
    """Stream ``path`` into ``dest`` (a folder gets ``file_name``, made safe) by the rules
    of :mod:`invokeai_client._files`; the body must start like ``content``."""
    target = await anyio.to_thread.run_sync(
        partial(plan_target, dest, file_name, overwrite=overwrite)
    )
    out: AtomicFile | None = None
    try:
        async with http.stream("GET", path) as chunks:
            head = b""
            async for chunk in chunks:
                if out is None:
                    head += chunk
                    if len(head) < 16:
                        continue
                    check_content(content, head, method="GET", path=path)
                    out = await anyio.to_thread.run_sync(AtomicFile, target)
                    chunk, head = head, b""
                await anyio.to_thread.run_sync(out.write, chunk)
            if out is None:  # a body shorter than any signature
                check_content(content, head, method="GET", path=path)
                out = await anyio.to_thread.run_sync(AtomicFile, target)
                await anyio.to_thread.run_sync(out.write, head)
        return await anyio.to_thread.run_sync(partial(out.commit, overwrite=overwrite))
    except BaseException:
        if out is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(out.discard)
        raise


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
