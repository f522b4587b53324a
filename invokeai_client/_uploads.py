"""The one image-upload request of the SDK (``POST /api/v1/images/upload``).

Every upload goes through :func:`upload_image`: workflow handles uploading local image inputs
and the image repository alike, so multipart encoding and the query parameters live here only.
The caller reads the data (off the event loop); this function only sends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

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
            form.add_field("resize_to", json.dumps([int(resize_to[0]), int(resize_to[1])]))
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
