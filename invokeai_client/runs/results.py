"""What a finished run gives back: :class:`WorkflowResult` and :class:`ImageRef`.

Outputs are keyed by the graph node id you sent (the *source* id) and mapped to plain Python
values: an ``integer_output`` becomes its int, a ``string_output`` its string, a collection
its list, an image output an :class:`ImageRef`. An output with several fields becomes a dict
of them. A node that ran several times (under ``iterate``) maps to the list of its outputs in
iteration order.

The same mapping is applied to ``invocation_complete`` events as they arrive and to a queue
item's ``session.results`` read over REST (via ``source_prepared_mapping``), so both paths
give equal results.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import anyio
import anyio.to_thread

from .. import errors
from .._files import make_folder, safe_file_name

if TYPE_CHECKING:
    from ..repositories.images import ImageRepository

__all__ = ["FieldValues", "ImageRef", "WorkflowResult", "map_output", "safe_file_name"]

PASSTHROUGH_NODE_TYPES = frozenset({"image", "load_image", "video"})
"""Node types that only pass an existing image on; their outputs are not new images."""

class ImageHost(Protocol):
    """What an :class:`ImageRef` downloads through: a client (its ``images`` repository)."""

    @property
    def images(self) -> ImageRepository: ...


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image the server holds, as a run output: its name and size.

    ``await ref.download()`` gives the PNG bytes; ``await ref.save(folder)`` writes it into
    ``folder`` under a safe file name and returns the path. Two refs are equal when they name
    the same image with the same size.
    """

    image_name: str
    width: int | None = None
    height: int | None = None
    client: ImageHost | None = field(default=None, compare=False, repr=False, hash=False)

    def _require_client(self) -> ImageHost:
        if self.client is None:
            raise errors.InvokeAIError(
                f"ImageRef {self.image_name!r} is not bound to a client; use "
                "client.images to download it"
            )
        return self.client

    async def download(self) -> bytes:
        """The full-size image file as bytes (PNG), through ``client.images``."""
        return await self._require_client().images.download(self.image_name)

    def _repr_png_(self) -> bytes | None:
        """The image, for Jupyter/IPython to show inline (None when it cannot be fetched)."""
        if self.client is None:
            return None
        return self.client.images.png_for_display(self.image_name)

    async def save(
        self, folder: str | Path, *, name: str | None = None, overwrite: bool = False
    ) -> Path:
        """Download into ``folder`` (created if needed); returns the file's path.

        The file name is ``name`` or the image name, made safe by
        :func:`~invokeai_client.safe_file_name` (the same rules as ``images.download``:
        plain names verbatim, others cleaned and told apart by a short hash), so a hostile
        name cannot escape ``folder`` and two names never share a file. An existing file is
        refused unless ``overwrite=True``; a symlink in the folder is never followed; the file
        appears complete or not at all, and only if the server sent an image.
        """
        images = self._require_client().images
        # A file in the way is a ValidationError, no permission or space a FileWriteError.
        target_dir = await anyio.to_thread.run_sync(make_folder, Path(folder))
        return await images.download(
            self.image_name, target_dir / safe_file_name(name or self.image_name),
            overwrite=overwrite,
        )


class FieldValues(Mapping[str, Any]):
    """The batch values of one item, keyed as the sweep named its inputs.

    ``wf.submit_batch({"Seed": [1, 2]})`` gives items whose ``field_values`` are
    ``{"Seed": 1}`` and ``{"Seed": 2}``. An input swept by ``"node_id.field_name"``, and raw
    ``data=`` groups, keep that key. Every value can also be read by its full
    ``"node_id.field_name"`` key (``values[wf.input("Seed").key]``), whatever the sweep
    called it; :meth:`by_node` gives them all under those keys. Compares equal to a dict
    with the same keys and values.
    """

    __slots__ = ("_aliases", "_values")

    def __init__(self, values: Mapping[str, Any], names: Mapping[str, str] | None = None):
        # values: keyed "node_id.field_name"; names: full key -> the sweep's name for it.
        names = names or {}
        self._values = {names.get(key, key): value for key, value in values.items()}
        self._aliases = {
            key: names[key] for key in values if key in names and names[key] != key
        }

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            alias = self._aliases.get(key)
            if alias is not None:
                return self._values[alias]
        known = ", ".join(map(repr, self._values)) or "none"
        raise KeyError(f"{key!r} is not a swept input of this item (swept: {known})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def by_node(self) -> dict[str, Any]:
        """The same values keyed ``"node_id.field_name"`` (as the server records them)."""
        full = {name: key for key, name in self._aliases.items()}
        return {full.get(name, name): value for name, value in self._values.items()}


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """The outcome of one queue item.

    ``status`` is ``"completed"``, ``"failed"`` or ``"canceled"`` as the server says, or
    ``"lost"`` (the server no longer knows the item) or ``"detached"`` (the client closed and
    left the item on the server). ``outputs`` maps each
    graph node id that ran to its mapped output (see the module doc), in the order the nodes
    finished; ``images`` lists the new, non-intermediate images in that order.
    ``field_values`` holds the batch values substituted into this item, keyed by the names
    the sweep used (labels; see :class:`FieldValues`). On failure ``error_node_id``, ``error_type``,
    ``error_message`` and ``error_traceback`` say what broke.
    """

    status: str
    item_id: int
    batch_id: str
    session_id: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    images: tuple[ImageRef, ...] = ()
    field_values: Mapping[str, Any] = field(default_factory=dict)
    error_node_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the item completed."""
        return self.status == "completed"

    def __getitem__(self, node_id: str) -> Any:
        """The output of graph node ``node_id`` (``result["sum"]``)."""
        try:
            return self.outputs[node_id]
        except KeyError:
            names = sorted(self.outputs)
            known = ", ".join(names[:20]) or "none"
            if len(names) > 20:
                known += f" (+{len(names) - 20} more)"
            raise KeyError(
                f"node {node_id!r} has no output in item {self.item_id} (outputs: {known})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    @property
    def image(self) -> ImageRef:
        """The item's new image, for workflows that make one (the first of several).

        Typed without ``None`` so ``await result.image.save(...)`` needs no check: an item
        that failed raises its run error here, and one that completed without a new image
        raises :class:`~invokeai_client.errors.InvokeAIError` naming its outputs. Use
        ``images`` when a workflow makes none or several.
        """
        if self.images:
            return self.images[0]
        self.raise_for_status()
        known = ", ".join(sorted(self.outputs)) or "none"
        raise errors.InvokeAIError(
            f"queue item {self.item_id} made no new image (outputs of nodes: {known}); "
            "result.images is empty, result.outputs holds what it made"
        )

    def error(self) -> errors.RunError | None:
        """The error this result stands for (None when it completed)."""
        if self.status == "completed":
            return None
        common: dict[str, Any] = {
            "item_id": self.item_id,
            "batch_id": self.batch_id,
            "session_id": self.session_id,
            "node_id": self.error_node_id,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "traceback": self.error_traceback,
            "status": self.status,
        }
        if self.status == "failed":
            where = f" in node {self.error_node_id!r}" if self.error_node_id else ""
            what = ": ".join(p for p in (self.error_type, self.error_message) if p) or "failed"
            return errors.RunFailedError(
                f"queue item {self.item_id} failed{where}: {what}", **common
            )
        if self.status == "canceled":
            why = f": {self.error_message}" if self.error_message else ""
            return errors.RunCanceledError(f"queue item {self.item_id} was canceled{why}", **common)
        if self.status == "lost":
            why = self.error_message or "unknown to the server"
            return errors.RunLostError(
                f"queue item {self.item_id} is lost: {why}",
                **common,
            )
        if self.status == "detached":
            return errors.RunDetachedError(
                f"queue item {self.item_id} was left on the server: {self.error_message or ''}",
                **common,
            )
        return errors.RunError(
            f"queue item {self.item_id} ended as {self.status}: {self.error_message or ''}",
            **common,
        )

    def raise_for_status(self) -> WorkflowResult:
        """Raise the run's error unless it completed; returns self for chaining."""
        error = self.error()
        if error is not None:
            raise error
        return self


# -- output mapping ----------------------------------------------------------------------

_META_KEYS = frozenset({"type", "output_meta"})
_PLAIN_TYPES = frozenset({int, float, str, bool, type(None)})


def _is_image_field(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and "image_name" in value and len(value) <= 2


def map_value(value: Any, client: ImageHost | None) -> Any:
    """One output field's value as a Python value (image fields become ImageRefs)."""
    if isinstance(value, dict):
        if _is_image_field(value):
            return ImageRef(str(value["image_name"]), client=client)
        return {k: map_value(v, client) for k, v in value.items()}
    if isinstance(value, list):
        return [map_value(v, client) for v in value]
    return value


def map_output(output: Mapping[str, Any], client: ImageHost | None) -> Any:
    """A node's output (``{"type": ..., <fields>}``) as a Python value; see the module doc."""
    if len(output) == 2 and "type" in output:
        # One field (the common case: an integer, a string, a collection): its value. A lone
        # image field maps to the same ImageRef as below, without a size.
        for key, value in output.items():
            if key != "type" and key not in _META_KEYS:
                return value if type(value) in _PLAIN_TYPES else map_value(value, client)
    fields = {k: v for k, v in output.items() if k not in _META_KEYS}
    if len(fields) == 1:
        (value,) = fields.values()
        return value if type(value) in _PLAIN_TYPES else map_value(value, client)
    image = fields.get("image")
    if _is_image_field(image):
        ref = ImageRef(
            str(image["image_name"]),
            _as_int(fields.get("width")),
            _as_int(fields.get("height")),
            client,
        )
        rest = {k: v for k, v in fields.items() if k not in ("image", "width", "height")}
        if not rest:
            return ref
        return {"image": ref, **{k: map_value(v, client) for k, v in rest.items()}}
    return {k: map_value(v, client) for k, v in fields.items()}


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def collect_images(value: Any, into: list[ImageRef]) -> None:
    """Append every ImageRef inside a mapped output value, in field order."""
    if isinstance(value, ImageRef):
        into.append(value)
    elif isinstance(value, dict):
        for inner in value.values():
            collect_images(inner, into)
    elif isinstance(value, list):
        for inner in value:
            collect_images(inner, into)


_NO_NODES: frozenset[str] = frozenset()


def iterated_nodes(graph: Mapping[str, Any] | None) -> frozenset[str]:
    """Graph node ids that run once per item of an ``iterate`` node.

    These are the iterate nodes and everything downstream of them up to a ``collect``; their
    output is always a list (one entry per iteration), even when the collection has one item.
    """
    if not graph:
        return _NO_NODES
    nodes: Mapping[str, Any] = graph.get("nodes") or {}
    starts = [nid for nid, node in nodes.items() if (node or {}).get("type") == "iterate"]
    if not starts:
        return _NO_NODES  # shared: an empty frozenset() is a new object of 216 bytes
    children: dict[str, list[str]] = {}
    for edge in graph.get("edges") or ():
        try:
            source = edge["source"]["node_id"]
            target = edge["destination"]["node_id"]
        except (KeyError, TypeError):
            continue
        children.setdefault(source, []).append(target)
    found: set[str] = set()
    stack = list(starts)
    while stack:
        node_id = stack.pop()
        if node_id in found:
            continue
        if (nodes.get(node_id) or {}).get("type") == "collect":
            continue
        found.add(node_id)
        stack.extend(children.get(node_id, ()))
    return frozenset(found)


def outputs_from_session(
    session: Mapping[str, Any], client: ImageHost | None
) -> tuple[dict[str, Any], tuple[ImageRef, ...]]:
    """Outputs and new images of a queue item's ``session`` (the REST path).

    Nodes come in the order their first result was recorded (the order they finished); a
    node under ``iterate`` maps to the list of its outputs ordered by iteration.
    """
    results: Mapping[str, Any] = session.get("results") or {}
    prepared_to_source: Mapping[str, str] = session.get("prepared_source_mapping") or {}
    source_to_prepared: Mapping[str, list[str]] = session.get("source_prepared_mapping") or {}
    paths: Mapping[str, list[int]] = session.get("prepared_iteration_paths") or {}
    nodes: Mapping[str, Any] = (session.get("execution_graph") or {}).get("nodes") or {}
    iterated = iterated_nodes(session.get("graph"))

    order: list[str] = []
    seen: set[str] = set()
    for prepared_id in results:
        source = prepared_to_source.get(prepared_id)
        if source is not None and source not in seen:
            seen.add(source)
            order.append(source)

    outputs: dict[str, Any] = {}
    images: list[ImageRef] = []
    for source in order:
        done = [p for p in source_to_prepared.get(source, ()) if p in results]
        if source in iterated:
            done.sort(key=lambda p: tuple(paths.get(p) or ()))
            value: Any = [map_output(results[p], client) for p in done]
        else:
            value = map_output(results[done[0]], client)
        outputs[source] = value
        node = nodes.get(done[0], {}) if done else {}
        if is_new_image_source(node.get("type"), node.get("is_intermediate")):
            collect_images(value, images)
    return outputs, tuple(images)


def is_new_image_source(node_type: Any, is_intermediate: Any) -> bool:
    """Whether images in this node's output are new gallery images (the GUI's rule)."""
    return not is_intermediate and node_type not in PASSTHROUGH_NODE_TYPES


def failed_node_from_session(session: Mapping[str, Any]) -> str | None:
    """The graph node id whose execution failed, from ``session.errors``."""
    failed: Mapping[str, Any] = session.get("errors") or {}
    mapping: Mapping[str, str] = session.get("prepared_source_mapping") or {}
    for prepared_id in failed:
        source = mapping.get(prepared_id)
        if source is not None:
            return source
    return None
