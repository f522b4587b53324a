"""Asynchronous preparation before a compile: boards, uploads and server-side generators.

The compile stage is pure; what needs the server happens here first, with the collaborators
passed in explicitly (the board and image repositories, the HTTP transport):

- the auto-add board and board inputs set to a board *name* become board ids;
- local image values (files, bytes, PIL images) and local images among batch items are
  uploaded once per handle (:class:`Uploads` records them for reuse and for cleanup);
- generator nodes that read the server (images of a board, dynamic prompts) are computed.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio

from ..errors import NotFoundError, ValidationError
from ..fields.models import ModelIdentifierField
from ..fields.resources import BoardField, ImageField, LocalImage
from ._sweeps import Groups, literal_value
from .form import IMAGE_HOLDERS, WorkflowForm, WorkflowValues, held_local_images
from .generators import SERVER_GENERATORS


class BoardResolver(Protocol):
    """What preparation needs of the board repository."""

    async def resolve(self, board: Any) -> str: ...


class _Uploaded(Protocol):
    @property
    def image_name(self) -> str: ...


class ImageStore(Protocol):
    """What preparation needs of the image repository."""

    async def upload(
        self, image: Any, *, category: Any = ..., board: Any = ..., intermediate: bool = ...
    ) -> _Uploaded: ...

    async def delete(self, image_name: str) -> Any: ...


class Requester(Protocol):
    """What generators need of the HTTP transport."""

    async def request(
        self, method: str, path: str, *, params: Any = ..., json: Any = ...,
        retry: bool | None = ...,
    ) -> Any: ...


async def resolve_board(boards: BoardResolver, board: Any) -> str | None:
    """The id of the auto-add board ``board`` (id, name or Board), or None for no board."""
    if board is None:
        return None
    return await boards.resolve(board)


async def resolve_board_inputs(
    boards: BoardResolver, values: WorkflowValues, board_ids: dict[str, str]
) -> None:
    """Turn board inputs set to a board *name* into that board's id (one lookup per name,
    remembered in ``board_ids``), so ``set("Board", "My board")`` saves where it was meant."""
    for held in values.fields.values():
        if not isinstance(held, BoardField) or not isinstance(held.value, dict):
            continue
        ref = held.value.get("board_id")
        if not isinstance(ref, str) or ref in board_ids.values():
            continue
        board_id = board_ids.get(ref)
        if board_id is None:
            try:
                board_id = await boards.resolve(ref)
            except ValidationError as exc:
                raise ValidationError(
                    f"input {held.display_name()}: {exc}",
                    input=held.display_name(), rule=exc.rule,
                ) from None
            board_ids[ref] = board_id
        if board_id != ref:
            held.set({"board_id": board_id})


def unresolved_board_inputs(values: WorkflowValues, board_ids: Mapping[str, str]) -> bool:
    """Whether a board input holds a reference not checked yet (a name, or a new id)."""
    return any(_unresolved_board(held, board_ids) for held in values.fields.values())


def _unresolved_board(held: object, board_ids: Mapping[str, str]) -> bool:
    return (
        isinstance(held, BoardField)
        and isinstance(held.value, dict)
        and held.value.get("board_id") not in board_ids.values()
    )


def server_needs(
    values: WorkflowValues, uploads: Mapping[LocalImage, str], board_ids: Mapping[str, str]
) -> tuple[bool, bool, bool]:
    """What a submit must ask the server before it compiles, from one pass over the values:
    (model names to look up, local images to upload, board references to check)."""
    names = images = boards = False
    for held in values.fields.values():
        if isinstance(held, ModelIdentifierField):
            names = names or held.pending_name is not None
        elif isinstance(held, BoardField):
            boards = boards or _unresolved_board(held, board_ids)
        elif not images and isinstance(held, IMAGE_HOLDERS):
            images = any(image not in uploads for image in held_local_images(held))
    return names, images, boards


class Uploads(Mapping[LocalImage, str]):
    """The images one handle uploaded: local image -> image name, in upload order.

    The handle owns them: they are reused by later compiles and deleted by
    :meth:`delete_all` (nothing else deletes them)."""

    def __init__(self) -> None:
        self._names: dict[LocalImage, str] = {}
        self.uploaded: list[str] = []

    def __getitem__(self, image: LocalImage) -> str:
        return self._names[image]

    def __iter__(self) -> Any:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    async def upload(
        self, images: ImageStore, image: LocalImage, *, board: Any = None,
        intermediate: bool = True,
    ) -> str:
        """Upload ``image`` (file reads and PIL encoding off the event loop) and record it."""
        source = image.source
        if isinstance(source, Path):
            source = await anyio.to_thread.run_sync(os.path.expanduser, source)
        dto = await images.upload(source, category="user", board=board,
                                  intermediate=intermediate)
        self._names[image] = dto.image_name
        self.uploaded.append(dto.image_name)
        return dto.image_name

    async def delete_all(self, images: ImageStore) -> None:
        """Delete every recorded upload (already-deleted ones are skipped)."""
        while self.uploaded:
            name = self.uploaded[-1]
            with contextlib.suppress(NotFoundError):
                await images.delete(name)
            self.uploaded.pop()
            for image, uploaded in builtins.list(self._names.items()):
                if uploaded == name:
                    del self._names[image]


def datum_field(form: WorkflowForm, datum: Mapping[str, Any]) -> Any:
    """The field a (user) batch datum varies, or None when it names none."""
    if "input" in datum:
        return form.field(datum["input"])
    node_path, field_name = datum.get("node_path"), datum.get("field_name")
    if not isinstance(node_path, str) or not isinstance(field_name, str):
        return None  # the compile names the problem
    return form.field_at(node_path, field_name, create=False)


def has_image_items(form: WorkflowForm, groups: Sequence[Sequence[Mapping[str, Any]]]) -> bool:
    """Whether a datum of ``groups`` varies an image input (its items may be local files)."""
    return any(
        isinstance(datum_field(form, datum), ImageField) for group in groups for datum in group
    )


async def upload_batch_items(
    images: ImageStore, form: WorkflowForm, groups: Groups, uploads: Uploads
) -> None:
    """Upload the local images among batch items and put their names in their place
    (under the handle's cleanup policy, like the uploads of input values)."""
    for group in groups:
        for datum in group:
            target = datum_field(form, datum) if "input" in datum else form.field_at(
                str(datum.get("node_path")), str(datum.get("field_name"))
            )
            items = datum.get("items")
            if not isinstance(target, ImageField) or isinstance(
                items, (str, bytes, Mapping)
            ) or not isinstance(items, Iterable):
                continue
            items = builtins.list(items)
            try:
                checked = [target.check(item) for item in items]
            except ValidationError:
                continue  # the compile names the item and the rule
            if not any(isinstance(value, LocalImage) for value in checked):
                continue
            datum["items"] = [
                {"image_name": await uploads.upload(images, value)}
                if isinstance(value, LocalImage) else item
                for item, value in builtins.zip(items, checked, strict=True)
            ]


async def resolve_generators(form: WorkflowForm, http: Requester) -> None:
    """Compute the generator nodes that need the server; their values go to
    ``form.values.generated`` (the compile uses them instead of computing locally)."""
    for node in form.definition.invocation_nodes():
        if node.type not in ("image_generator", "string_generator"):
            continue
        spec = literal_value(form.values, node, "generator")
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if not isinstance(kind, str) or kind not in SERVER_GENERATORS:
            continue  # computed locally, or refused with its reason when compiled
        if kind == "image_generator_images_from_board":
            form.values.generated[node.id] = await _board_images(http, spec)
        else:
            where = f"generator node {node.title!r} ({node.id})"
            form.values.generated[node.id] = await _dynamic_prompts(http, spec, kind, where)


async def _board_images(http: Requester, spec: Mapping[str, Any]) -> list[Any]:
    board_id = spec.get("board_id")
    if not isinstance(board_id, str) or not board_id:
        return []
    category = spec.get("category", "images")
    categories = ["general"] if category == "images" else ["control", "mask", "user", "other"]
    names = await http.request(
        "GET",
        f"/api/v1/boards/{board_id}/image_names",
        params={"categories": categories, "is_intermediate": False},
    )
    return [{"image_name": n} for n in names or [] if isinstance(n, str)]


async def _dynamic_prompts(
    http: Requester, spec: Mapping[str, Any], kind: str, where: str
) -> list[Any]:
    prompt = spec.get("input", "")
    count = spec.get("maxPrompts" if kind.endswith("combinatorial") else "count", 10)
    if not isinstance(prompt, str) or isinstance(count, bool) or not isinstance(count, int):
        raise ValidationError(
            f"{where}: dynamic prompt generator needs a string input and an integer count",
            input=where,
            rule="generator settings",
        )
    body: dict[str, Any] = {
        "prompt": prompt,
        "max_prompts": count,
        "combinatorial": kind.endswith("combinatorial"),
    }
    seed = spec.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        body["seed"] = seed
    answer = await http.request("POST", "/api/v1/utilities/dynamicprompts", json=body,
                                retry=True)
    prompts = answer.get("prompts") if isinstance(answer, Mapping) else None
    return [p for p in prompts or [] if isinstance(p, str)]


__all__ = [
    "BoardResolver",
    "ImageStore",
    "Requester",
    "Uploads",
    "has_image_items",
    "resolve_board",
    "resolve_board_inputs",
    "resolve_generators",
    "unresolved_board_inputs",
    "upload_batch_items",
]
