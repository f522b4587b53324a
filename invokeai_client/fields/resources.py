"""Resource fields: images, boards, colors and the server's other structured values."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from .._image_bytes import is_pil_image, sniff_image
from ._base import FieldRuleError, ImageResolver, IvkField, json_compatible

# -- local images ------------------------------------------------------------------------


@dataclass(eq=False)
class LocalImage:
    """An image that lives on this machine (a file, bytes or a PIL image), uploaded to the
    server when the workflow is submitted. Compared by identity: each handle uploads the same
    object once."""

    source: Path | bytes | Any

    @property
    def kind(self) -> str:
        if isinstance(self.source, Path):
            return "path"
        if isinstance(self.source, bytes):
            return "bytes"
        return "pil"

    def __deepcopy__(self, memo: dict[int, Any]) -> LocalImage:
        return self  # the data never changes; each handle still uploads it once for itself

    def __repr__(self) -> str:
        if isinstance(self.source, Path):
            return f"LocalImage({str(self.source)!r})"
        if isinstance(self.source, bytes):
            return f"LocalImage(<{len(self.source)} bytes>)"
        return f"LocalImage(<{type(self.source).__name__}>)"


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith("~")


# -- images ------------------------------------------------------------------------------


class ImageField(IvkField[Any]):
    """An image: an existing server image name (``"3f2a....png"``), ``{"image_name": ...}``,
    an object with an ``image_name`` (an ImageDTO), or local data to upload at submit time:
    a :class:`pathlib.Path` (or a string containing a path separator), ``bytes`` or a PIL
    image. The value is kept as ``{"image_name": ...}`` or a :class:`LocalImage`."""

    kind = "image"

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, LocalImage):
            return value
        if isinstance(value, str):
            if not value.strip():
                raise FieldRuleError("image name", "an image name cannot be empty")
            if _looks_like_path(value):
                return LocalImage(Path(value))
            return {"image_name": value}
        if isinstance(value, os.PathLike):
            return LocalImage(Path(os.fspath(value)))
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value)
            if sniff_image(data) is None:
                raise FieldRuleError(
                    "image data", "the bytes are not an image (PNG, JPEG, WebP, GIF, BMP, TIFF)"
                )
            return LocalImage(data)
        if is_pil_image(value):
            return LocalImage(value)
        if isinstance(value, dict):
            name = value.get("image_name")
            if isinstance(name, str) and name:
                return {"image_name": name}
            raise FieldRuleError(
                "image", f"an image object needs a non-empty 'image_name', got {value!r:.80}"
            )
        name = getattr(value, "image_name", None)
        if isinstance(name, str) and name:
            return {"image_name": name}
        raise FieldRuleError(
            "image",
            f"expected an image name, a path, bytes or a PIL image, got {type(value).__name__}",
        )

    def _to_api(self, value: Any, images: ImageResolver | None) -> Any:
        if isinstance(value, LocalImage):
            if images is None:
                raise self._error(
                    "uploaded",
                    f"{value!r} is local data that is uploaded at submit time; call "
                    "'await handle.upload_images()' before building the graph yourself",
                )
            return images(value)
        return value

    def local_images(self) -> list[LocalImage]:
        """The local images of the current value (not uploaded yet)."""
        value = self.value
        items = value if isinstance(value, list) else [value]
        return [item for item in items if isinstance(item, LocalImage)]


class VideoField(IvkField[dict[str, str]]):
    """A video stored on the server: a name or ``{"video_name": ...}``."""

    kind = "video"

    def _coerce(self, value: Any) -> dict[str, str]:
        if isinstance(value, str) and value:
            return {"video_name": value}
        if isinstance(value, dict) and isinstance(value.get("video_name"), str):
            return {"video_name": value["video_name"]}
        name = getattr(value, "video_name", None)
        if isinstance(name, str) and name:
            return {"video_name": name}
        raise FieldRuleError("video", f"expected a video name, got {type(value).__name__}")


# -- boards ------------------------------------------------------------------------------


class BoardField(IvkField[Any]):
    """Where a node saves its images: ``"auto"`` (the auto-add board given at submit, else
    none), ``"none"`` (uncategorized), a board id, ``{"board_id": ...}`` or a board object."""

    kind = "board"

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, str):
            if value in ("auto", "none"):
                return value
            if not value.strip():
                raise FieldRuleError("board", "a board id cannot be empty")
            return {"board_id": value}
        if isinstance(value, dict):
            board_id = value.get("board_id")
            if isinstance(board_id, str) and board_id:
                return {"board_id": board_id}
            raise FieldRuleError("board", f"a board object needs a 'board_id', got {value!r:.80}")
        board_id = getattr(value, "board_id", None)
        if isinstance(board_id, str) and board_id:
            return {"board_id": board_id}
        raise FieldRuleError(
            "board", f"expected 'auto', 'none', a board id or a board, got {type(value).__name__}"
        )


# -- colors ------------------------------------------------------------------------------

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


class ColorField(IvkField[dict[str, int]]):
    """An RGBA color: ``{"r","g","b","a"}`` (0-255; ``a`` defaults to 255), a tuple
    ``(r, g, b[, a])`` or a hex string ``"#rrggbb[aa]"``."""

    kind = "color"

    def _coerce(self, value: Any) -> dict[str, int]:
        channels: list[Any]
        if isinstance(value, str):
            match = _HEX.match(value.strip())
            if not match:
                raise FieldRuleError("color", f"{value!r:.40} is not a hex color like '#ff8800'")
            digits = match.group(1)
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        elif isinstance(value, dict):
            missing = [c for c in "rgb" if c not in value]
            if missing:
                raise FieldRuleError("color", f"a color needs r, g and b; missing {missing}")
            channels = [value["r"], value["g"], value["b"], value.get("a", 255)]
        elif isinstance(value, (list, tuple)) and len(value) in (3, 4):
            channels = list(value)
        else:
            raise FieldRuleError(
                "color", f"expected a color dict, tuple or hex string, got {type(value).__name__}"
            )
        if len(channels) == 3:
            channels.append(255)
        for channel in channels:
            if isinstance(channel, bool) or not isinstance(channel, int):
                raise FieldRuleError("0..255", f"color channels must be integers, got {channel!r}")
            if not 0 <= channel <= 255:
                raise FieldRuleError("0..255", f"color channel {channel} is outside 0..255")
        r, g, b, a = channels
        return {"r": r, "g": g, "b": b, "a": a}


# -- structured values -------------------------------------------------------------------


class StructField(IvkField[dict[str, Any]]):
    """A JSON object of a named server type (latents, conditioning, tensors ...), checked
    against the type's properties: required keys present, values of the declared kinds.

    ``shape`` maps each property to its kind (``string``, ``integer``, ``number``,
    ``boolean``, ``array``, ``object`` or ``any``); ``required_keys`` lists the required ones.
    """

    kind = "object"
    schema_name: str = ""
    shape: dict[str, str] = Field(default_factory=dict)
    required_keys: list[str] = Field(default_factory=list)

    def _coerce(self, value: Any) -> dict[str, Any]:
        what = self.schema_name or self.kind
        if hasattr(value, "model_dump") and not isinstance(value, dict):
            value = value.model_dump(mode="json", exclude_none=True)
        if not isinstance(value, dict):
            raise FieldRuleError("type", f"expected a {what} object, got {type(value).__name__}")
        missing = [key for key in self.required_keys if key not in value]
        if missing:
            raise FieldRuleError(
                "required keys", f"a {what} needs {self.required_keys}; missing {missing}"
            )
        for key, kind in self.shape.items():
            if key in value and value[key] is not None and not _is_kind(value[key], kind):
                raise FieldRuleError(
                    "type", f"{what}.{key} must be {kind}, got {type(value[key]).__name__}"
                )
        if not json_compatible(value):
            raise FieldRuleError("JSON value", f"a {what} must hold only JSON values")
        return dict(value)

    def describe(self) -> str:
        text = self.schema_name or self.kind
        return text + (f" (or a list of {text})" if self.accepts_list else "")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, (list, tuple))
    if kind == "object":
        return isinstance(value, dict)
    return True


class LatentsField(StructField):
    """Latents stored on the server (``{"latents_name", "seed"?}``); usually fed by an edge."""

    kind = "latents"


class TensorField(StructField):
    """A tensor stored on the server (``{"tensor_name"}``)."""

    kind = "tensor"


class ConditioningField(StructField):
    """Text conditioning stored on the server (``{"conditioning_name", "mask"?}`` and the
    FLUX/SD3/... variants)."""

    kind = "conditioning"


class DenoiseMaskField(StructField):
    """A denoise mask (``{"mask_name", "masked_latents_name"?, "gradient"}``)."""

    kind = "denoise_mask"


class MetadataField(StructField):
    """Metadata embedded in saved images: any JSON object."""

    kind = "metadata"
