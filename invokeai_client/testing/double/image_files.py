"""What the double's image routes read and write: uploads decoded (and cropped, resized)
into PNGs with their text chunks, WebP thumbnails, zips, and the form and query parts."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from aiohttp import BodyPartReader, web

from .http import error, missing

THUMBNAIL_SIZE = 256


def decode_upload(
    data: bytes, crop_visible: bool, resize_to: dict[str, int] | None
) -> tuple[bytes, int, int, dict[str, Any]]:
    """PNG bytes, size and text chunks of an uploaded image (a worker thread runs this)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        info = {k: v for k, v in opened.info.items() if isinstance(v, str)}
        image = opened.copy()
    if crop_visible:
        box = image.getbbox()
        if box:
            image = image.crop(box)
    if resize_to:
        image = image.convert("RGBA").resize((resize_to["width"], resize_to["height"]))
    out = io.BytesIO()
    if image.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        image = image.convert("RGBA")
    image.save(out, format="PNG")
    return out.getvalue(), image.width, image.height, info


async def upload_form(request: web.Request) -> tuple[str, bytes, str | None, str | None]:
    """The parts of an upload form: the file's content type and bytes, ``metadata`` and
    ``resize_to`` (each None when not sent)."""
    data = b""
    content_type = ""
    metadata_text: str | None = None
    resize_text: str | None = None
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            content_type = part.headers.get("Content-Type", "")
            data = bytes(await part.read())
        elif part.name == "metadata":
            metadata_text = await part.text()
        elif part.name == "resize_to":
            resize_text = await part.text()
    return content_type, data, metadata_text, resize_text


def resize_to(text: str) -> dict[str, int]:
    """An upload's ``resize_to`` (``{"width", "height"}``, positive ints), or the 400."""
    parsed = json_dict(text)
    if not parsed or not all(
        isinstance(parsed.get(k), int) and parsed[k] > 0 for k in ("width", "height")
    ):
        raise error(400, "Invalid resize_to format or size")
    return {"width": parsed["width"], "height": parsed["height"]}


def thumbnail(data: bytes) -> bytes:
    """A WebP thumbnail (at most 256 px on its longer side) of PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGBA")
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    out = io.BytesIO()
    image.save(out, format="WEBP")
    return out.getvalue()


def json_dict(text: str | None) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def valid_workflow(text: str | None) -> str | None:
    value = json_dict(text)
    ok = value is not None and isinstance(value.get("nodes"), list) and isinstance(
        value.get("edges"), list
    )
    return text if ok else None


def valid_graph(text: str | None) -> str | None:
    value = json_dict(text)
    ok = value is not None and isinstance(value.get("nodes"), dict) and isinstance(
        value.get("edges"), list
    )
    return text if ok else None


def bool_query(request: web.Request, name: str, *, required: bool = False) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        if required:
            raise missing(["query", name])
        return None
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise error(422, [{"type": "bool_parsing", "loc": ["query", name],
                       "msg": "Input should be a valid boolean", "input": raw}])


def zip_files(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, data in entries:
            archive.writestr(arcname, data)
    return buffer.getvalue()
