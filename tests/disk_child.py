"""Writes a download under an OS limit, in its own process (the limit must not touch pytest).

``python -m tests.disk_child MODE FOLDER`` serves an endless PNG (:class:`HostileServer`),
sets the limit MODE names, then downloads into FOLDER with ``images.download`` and with
``ImageRef.save``, printing one JSON line per call: the error class, its errno and path, and
what was left in FOLDER.

- ``fsize``: a 64 KiB file size limit (``RLIMIT_FSIZE``; writes past it fail with EFBIG);
- ``nofile``: no file descriptor left (``RLIMIT_NOFILE``; EMFILE);
- ``plain``: no limit (FOLDER is made unwritable by the caller: EACCES).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from invokeai_client import AsyncClient, ImageRef, InvokeAIError
from invokeai_client.testing.hostile import HostileServer

LIMIT = 64 * 1024
LIMITED = (resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE)


def _limit(mode: str) -> None:
    if mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(
            resource.RLIMIT_FSIZE)[1]))
    elif mode == "nofile":
        lowest = os.open(os.devnull, os.O_RDONLY)  # the lowest free descriptor
        os.close(lowest)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))


def _outcome(exc: BaseException | None, folder: Path) -> dict[str, Any]:
    return {
        "error": None if exc is None else type(exc).__name__,
        "inside": exc is None or isinstance(exc, InvokeAIError),
        "errno": getattr(exc, "errno", None),
        "path": getattr(exc, "path", None),
        "message": str(exc),
        "left": sorted(os.listdir(folder)),
    }


async def main(mode: str, folder: Path) -> None:
    async with HostileServer("image") as server, AsyncClient(
        server.url, events=False, max_download_size=4 * 1024 * 1024
    ) as client:
        # Connection pooled, worker thread started, modules imported: before any limit.
        with tempfile.TemporaryDirectory() as warm:
            await client.images.download("warm.png", warm)
        if mode == "fsize":
            server.poison = "huge"  # an endless PNG: the write passes the limit
        calls = {
            "download": lambda: client.images.download("x.png", folder),
            "save": lambda: ImageRef("x.png", client=client).save(folder),
        }
        for name, call in calls.items():
            error: BaseException | None = None
            before = [resource.getrlimit(r) for r in LIMITED]
            _limit(mode)
            try:
                await call()
            except Exception as exc:
                error = exc
            finally:
                for limited, value in zip(LIMITED, before, strict=True):
                    resource.setrlimit(limited, value)
            print(json.dumps({"call": name, **_outcome(error, folder)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
