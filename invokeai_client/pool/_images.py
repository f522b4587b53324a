"""Local image files in a pool job: read once, uploaded once per server, mapped back.

A workflow value or a swept item that is a local image (a path, bytes, a PIL image) cannot
go into one body for every server: each server names its uploads itself. So the pool reads
every local image once (a missing or non-image file fails here, before any request), names
it by a token made of its content hash (``local-image-<sha256>``), and compiles the job
with tokens in place of images. Per server, each distinct content is uploaded once
(intermediate, so it stays out of the gallery) and the server's name replaces the token in
that server's body and chunks; the pool keeps the names for its life, so later jobs with
the same image upload nothing. Results give back what the user gave (the path), not a
token or a server's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._uploads import read_image_source
from ..errors import InvokeAIError
from ..fields import ImageField
from ..fields.resources import LocalImage

if TYPE_CHECKING:
    from ..workflows.handle import WorkflowHandle
    from ._member import Member

TOKEN = "local-image-"

Groups = list[list[dict[str, Any]]]


@dataclass
class LocalImages:
    """The job's local images: content hash -> bytes and file name, token -> content hash,
    token -> what the user gave, and the handle values (full key -> value with tokens) to
    set per server. Two files with the same content get two tokens (each maps back to its
    own path) but one upload per server."""

    data: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    _sources: dict[Any, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.data)

    async def token(self, image: LocalImage) -> str:
        """The token of ``image`` (read and checked now; ValidationError if not an image)."""
        source = image.source
        identity = str(source) if isinstance(source, Path) else id(source)
        if identity in self._sources:
            return self._sources[identity]
        data, filename, _, _ = await read_image_source(source)
        digest = hashlib.sha256(data).hexdigest()
        token = f"{TOKEN}{digest[:32]}-{len(self.content)}"
        self.data.setdefault(digest, (data, filename))
        self.content[token] = digest
        self.given[token] = str(source) if isinstance(source, Path) else repr(image)
        self._sources[identity] = token
        return token

    async def upload(
        self, member: Member, cache: MutableMapping[tuple[str, str], str]
    ) -> dict[str, str]:
        """token -> the image name on ``member``'s server, uploading what it lacks (once per
        server and content: ``cache`` is the pool's)."""
        for digest, (data, filename) in self.data.items():
            key = (member.url, digest)
            if key not in cache:
                dto = await member.client.images.upload(data, intermediate=True,
                                                        filename=filename)
                cache[key] = dto.image_name
        return {token: cache[(member.url, digest)] for token, digest in self.content.items()}


async def tokenize(
    handle: WorkflowHandle, groups: Groups
) -> tuple[WorkflowHandle, Groups, LocalImages]:
    """``handle`` (a copy, if it holds local images) and ``groups`` with every local image
    replaced by its token, and the images found."""
    images = LocalImages()
    local = handle.local_images()
    if local:
        handle = handle.copy()
        for held, _ in local:
            full = f"{held.node_id}.{held.name}"
            value = await _tokens(held.value, images)
            images.values[full] = value
            handle.set(full, value)
    out: Groups = []
    for group in groups:
        out.append([await _datum(handle, datum, images) for datum in group])
    return handle, out, images


async def _datum(handle: WorkflowHandle, datum: dict[str, Any], images: LocalImages
                 ) -> dict[str, Any]:
    key = datum.get("input") or f"{datum.get('node_path')}.{datum.get('field_name')}"
    items = datum.get("items")
    try:
        target = handle.field(key)
    except InvokeAIError:  # the compile names an unknown input
        return datum
    if not isinstance(target, ImageField) or not isinstance(items, (list, tuple)):
        return datum
    checked = []
    for item in items:
        try:
            value = target.check(item)
        except InvokeAIError:  # the compile names the item and the rule
            value = item
        checked.append(await _tokens(value, images) if isinstance(value, LocalImage) else item)
    return {**datum, "items": checked}


async def _tokens(value: Any, images: LocalImages) -> Any:
    if isinstance(value, LocalImage):
        return {"image_name": await images.token(value)}
    if isinstance(value, list):
        return [await _tokens(item, images) for item in value]
    return value


def named(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with every token replaced by its name in ``names`` (a server's uploads, or
    back to what the user gave)."""
    if isinstance(value, dict):
        token = value.get("image_name")
        if isinstance(token, str) and token in names:
            return {**value, "image_name": names[token]}
        return value
    if isinstance(value, list):
        return [named(item, names) for item in value]
    return value


def given(value: Any, originals: Mapping[str, Any]) -> Any:
    """``value`` as the user gave it (a token becomes the path it came from)."""
    if isinstance(value, dict):
        token = value.get("image_name")
        if isinstance(token, str) and token in originals:
            return originals[token]
    if isinstance(value, list):
        return [given(item, originals) for item in value]
    return value
