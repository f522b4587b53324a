"""How callers name images: one name, an object with ``image_name``, or several; checked.

Every image argument of the SDK goes through :func:`image_name_of` / :func:`image_names_of`,
so a name that could reach another route or a file outside a download folder is refused
before any request. :func:`read_image_record` is the one ``GET`` of an image's record.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .. import errors
from .._checks import check_bool, check_choice
from .._uploads import metadata_json, resize_json
from ..types.images import IMAGE_CATEGORIES
from ._base import check_text, naming

if TYPE_CHECKING:
    from .._http import HttpTransport

IMAGES = "/api/v1/images"
MAX_IMAGE_NAME = 255


@runtime_checkable
class HasImageName(Protocol):
    """Anything that names a server image (an :class:`ImageDTO`, a run's output image...)."""

    @property
    def image_name(self) -> str: ...


ImageLike = str | HasImageName
"""An image as callers may name it: its server name, or an object with ``image_name``."""

ImagesArg = ImageLike | Iterable[ImageLike]
"""One image or several."""

Category = Literal["general", "mask", "control", "user", "other"]


def check_image_name(name: object, *, input: str = "image") -> str:
    """An image name safe to put in a URL path and a file name, else ValidationError.

    Server image names are plain file names (``<uuid>.png``); a name with a path separator,
    ``..``, a control character or URL syntax is refused before any request, so it can neither
    reach another route nor write outside a download folder.
    """
    if not isinstance(name, str) or not name:
        raise errors.ValidationError(
            f"an image name must be a non-empty string, got {name!r}",
            input=input,
            rule="non-empty image name",
        )
    bad = (
        name in (".", "..")
        or len(name) > MAX_IMAGE_NAME
        or any(c in name for c in "/\\?#%")
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or name != name.strip()
    )
    if bad:
        raise errors.ValidationError(
            f"refusing image name {name!r}: an image name must be a plain file name (no path "
            "separators, '..', control characters or URL syntax)",
            input=input,
            rule="plain file name",
        )
    return name


def image_name_of(image: ImageLike, *, input: str = "image") -> str:
    """The name of ONE image (a name, or anything with ``image_name``), checked with
    :func:`check_image_name`."""
    if isinstance(image, str):
        return check_image_name(image, input=input)
    if isinstance(image, HasImageName):
        return check_image_name(image.image_name, input=input)
    raise errors.ValidationError(
        f"{input} must be an image name or an image, got {image!r}",
        input=input,
        rule="one image",
    )


def image_names_of(images: ImagesArg, *, input: str = "images") -> builtins.list[str]:
    """The names of one image or several (each checked with :func:`check_image_name`)."""
    if isinstance(images, str):
        return [check_image_name(images, input=input)]
    if isinstance(images, HasImageName):
        return [check_image_name(images.image_name, input=input)]
    if not isinstance(images, Iterable):
        raise errors.ValidationError(
            f"{input} must be an image name, an image, or a list of them, got {images!r}",
            input=input,
            rule="image name(s)",
        )
    names: builtins.list[str] = []
    for item in images:
        name = item.image_name if isinstance(item, HasImageName) else item
        names.append(check_image_name(name, input=input))
    return list(dict.fromkeys(names))


def check_categories(categories: str | Iterable[str] | None) -> builtins.list[str] | None:
    """Image categories as the server takes them, each checked; None means all."""
    if categories is None:
        return None
    values = [categories] if isinstance(categories, str) else builtins.list(categories)
    for value in values:
        if value not in IMAGE_CATEGORIES:
            raise errors.ValidationError(
                f"image category must be one of {', '.join(IMAGE_CATEGORIES)}, got {value!r}",
                input="category",
                rule="a known image category",
            )
    return values


async def read_image_record(http: HttpTransport, image: ImageLike) -> Any:
    """The server's record of one image (raw JSON); NotFoundError naming it if there is none."""
    name = image_name_of(image)
    with naming("image", name, action="read"):
        return await http.request("GET", f"{IMAGES}/i/{name}")


def check_listing(
    category: str | Iterable[str] | None,
    order: str,
    origin: str | None,
    starred: bool | None,
    intermediate: bool | None,
) -> builtins.list[str] | None:
    """Refuse bad listing filters before any request; the categories as the server takes them."""
    cats = check_categories(category)
    if order not in ("desc", "asc"):
        raise errors.ValidationError(
            f"order must be 'desc' or 'asc', got {order!r}", input="order", rule="desc|asc"
        )
    if origin is not None:
        check_choice("origin", origin, ("internal", "external"))
    for flag, value in (("starred", starred), ("intermediate", intermediate)):
        if value is not None:
            check_bool(flag, value)
    return cats


def check_upload(
    category: str,
    intermediate: object,
    crop_visible: object,
    session_id: str | None,
    filename: str | None,
    metadata: Mapping[str, Any] | None,
    resize_to: tuple[int, int] | None,
) -> None:
    """Refuse bad upload options before the file is read, naming the option."""
    check_categories(category)
    check_bool("intermediate", intermediate)
    check_bool("crop_visible", crop_visible)
    if session_id is not None:
        check_text("session_id", session_id)
    if filename is not None:
        check_text("filename", filename)
    if metadata is not None:
        metadata_json(metadata)
    if resize_to is not None:
        resize_json(resize_to)
