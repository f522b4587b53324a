"""Image bytes without I/O: what kind of image encoded bytes are, PIL images and their PNG.

Pure helpers shared by the upload request (:mod:`invokeai_client._uploads`) and the image
fields (:mod:`invokeai_client.fields.resources`), so typing a value needs no HTTP module.
"""

from __future__ import annotations

import io
from typing import Any

# Leading bytes of the formats Pillow (and so InvokeAI) reads, with their content types.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tiff"),
    (b"MM\x00*", "image/tiff", ".tiff"),
)


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` of encoded image bytes, or None if not an image."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("image/webp", ".webp")
    for magic, content_type, ext in _MAGIC:
        if data.startswith(magic):
            return (content_type, ext)
    return None


def is_pil_image(value: object) -> bool:
    """Whether ``value`` is a PIL image (False when Pillow is not installed)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is an optional extra
        return False
    return isinstance(value, Image.Image)


def encode_pil(image: Any) -> bytes:
    """PNG bytes of a PIL image (blocking: run it in a worker thread)."""
    buffer = io.BytesIO()
    frame = image
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        frame = image.convert("RGBA")
    frame.save(buffer, format="PNG")
    return buffer.getvalue()
