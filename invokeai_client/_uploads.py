"""The one image-upload request of the SDK (``POST /api/v1/images/upload``).

Every upload goes through :func:`upload_image`: workflow handles uploading local image inputs
and the image repository alike, so multipart encoding and the query parameters live here only.
:func:`read_image_source` turns what callers hold (a path, bytes, a PIL image) into checked
image bytes off the event loop; :func:`upload_image` only sends them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio.to_thread

from . import errors
from ._image_bytes import encode_pil, is_pil_image, sniff_image

if TYPE_CHECKING:
    from ._http import HttpTransport

IMAGE_CATEGORIES = ("general", "mask", "control", "user", "other")


async def upload_image(
    http: HttpTransport,
    data: bytes,
    *,
    filename: str,
    content_type: str = "image/png",
    image_category: str = "user",
    is_intermediate: bool = False,
    board_id: str | None = None,
    session_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    crop_visible: bool | None = None,
    resize_to: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Upload image bytes; returns the server's ImageDTO (``image_name``, size, board ...).

    Not retried automatically: a lost answer could otherwise leave two copies.
    """
    from .errors import ValidationError

    if image_category not in IMAGE_CATEGORIES:
        raise ValidationError(
            f"image_category must be one of {IMAGE_CATEGORIES}, got {image_category!r}",
            input="image_category",
            rule="known category",
        )

    def body() -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type=content_type)
        if metadata is not None:
            form.add_field("metadata", json.dumps(dict(metadata)))
        if resize_to is not None:
            # InvokeAI reads resize_to as a JSON object (the GUI sends the same).
            form.add_field(
                "resize_to", json.dumps({"width": int(resize_to[0]), "height": int(resize_to[1])})
            )
        return form

    params: dict[str, Any] = {
        "image_category": image_category,
        "is_intermediate": is_intermediate,
        "board_id": board_id,
        "session_id": session_id,
        "crop_visible": crop_visible,
    }
    answer = await http.request("POST", "/api/v1/images/upload", params=params, data=body)
    if not isinstance(answer, dict) or not isinstance(answer.get("image_name"), str):
        from .errors import APIError

        raise APIError(
            "POST /api/v1/images/upload: the server did not return an image record",
            method="POST",
            path="/api/v1/images/upload",
        )
    return answer


async def read_image_source(source: Any) -> tuple[bytes, str, str, str]:
    """``(data, filename, content_type, description)`` of an image to upload.

    ``source`` is a file path, encoded image bytes (PNG, JPEG, WebP, GIF, BMP, TIFF) or a PIL
    image (encoded as PNG). File reads and PIL encoding run in a worker thread. Anything that
    is not an image raises :class:`~invokeai_client.errors.ValidationError` naming it, before
    anything is sent.
    """
    from .errors import ValidationError

    filename: str | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        what = f"the given bytes ({len(data)} bytes)"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        what = f"file {str(path)!r}"
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError:
            raise ValidationError(
                f"image {what} does not exist", input="image", rule="existing file"
            ) from None
        except IsADirectoryError:
            raise ValidationError(
                f"image {what} is a folder", input="image", rule="a file"
            ) from None
        except OSError as exc:
            raise ValidationError(
                f"image {what} cannot be read: {exc.strerror or exc}",
                input="image",
                rule="readable file",
            ) from None
        filename = path.name
    elif is_pil_image(source):
        data = await anyio.to_thread.run_sync(encode_pil, source)
        what = "the PIL image"
    else:
        raise ValidationError(
            f"cannot upload {type(source).__name__}: give a file path, image bytes or a PIL image",
            input="image",
            rule="path, bytes or PIL image",
        )
    sniffed = sniff_image(data)
    if sniffed is None:
        raise ValidationError(
            f"{what} is not an image: upload PNG, JPEG, WebP, GIF, BMP or TIFF data",
            input="image",
            rule="encoded image bytes",
        )
    content_type, ext = sniffed
    return data, filename or f"upload{ext}", content_type, what


def metadata_json(metadata: Mapping[str, Any]) -> str:
    if not isinstance(metadata, Mapping):
        raise errors.ValidationError(
            f"metadata must be a mapping (a JSON object), got {type(metadata).__name__}",
            input="metadata",
            rule="JSON object",
        )
    try:
        return json.dumps(dict(metadata))
    except (TypeError, ValueError) as exc:
        raise errors.ValidationError(
            f"metadata must be JSON-serializable: {exc}", input="metadata", rule="JSON object"
        ) from None


def resize_json(resize_to: Sequence[int]) -> str:
    ok = (
        isinstance(resize_to, Sequence)
        and len(resize_to) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize_to)
    )
    if not ok:
        raise errors.ValidationError(
            f"resize_to must be (width, height) with positive integers, got {resize_to!r}",
            input="resize_to",
            rule="(width, height) > 0",
        )
    return json.dumps({"width": resize_to[0], "height": resize_to[1]})
