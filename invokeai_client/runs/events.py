"""Typed events of one run, as ``run.events()`` and ``batch.events()`` yield them.

They are the server's socket events of one queue item, filtered (no repeats, no other
users' copies), put in a sensible order and given mapped values:

- :class:`StatusChanged` - the item moved to ``in_progress``, ``completed``, ``failed``,
  ``canceled``... (the last one a run yields is terminal);
- :class:`NodeStarted` / :class:`NodeCompleted` (with the node's mapped output) /
  :class:`NodeFailed` - one node's execution;
- :class:`NodeProgress` - a node's progress: ``percentage`` (0..1 or None), ``message``,
  and while denoising the ``step`` of ``total`` and a preview image;
- :class:`ModelLoadStarted` / :class:`ModelLoadCompleted` - the server loading a model (or
  one part of it, ``submodel_type``) for this run.

A failing item's :class:`NodeFailed` always comes before its terminal
:class:`StatusChanged` (the server sends them the other way round).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..types.wire_events import ProgressImage

if TYPE_CHECKING:
    from .results import WorkflowResult

__all__ = [
    "ModelLoad",
    "ModelLoadCompleted",
    "ModelLoadStarted",
    "NodeCompleted",
    "NodeFailed",
    "NodeProgress",
    "NodeStarted",
    "RunEvent",
    "StatusChanged",
]
# denoise_step, preview_image and terminal_events are the run state's helpers (importable,
# not re-exported: runs/__init__ takes this list as its own)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something that happened to queue item ``item_id`` of batch ``batch_id``."""

    item_id: int
    batch_id: str


@dataclass(frozen=True, slots=True)
class StatusChanged(RunEvent):
    """The item's status changed; ``terminal`` when it will not change again.

    ``lost`` (the server no longer has the item) and ``detached`` (the client closed and
    left it) end a run too, so they are terminal like the server's final statuses.
    """

    status: str
    error_type: str | None = None
    error_message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "canceled", "lost", "detached")


@dataclass(frozen=True, slots=True)
class NodeStarted(RunEvent):
    """Graph node ``node_id`` (of type ``node_type``) began to execute."""

    node_id: str
    node_type: str | None = None
    prepared_id: str | None = None


@dataclass(frozen=True, slots=True)
class NodeProgress(RunEvent):
    """Progress of node ``node_id``: ``percentage`` is 0..1, or None when unknown.

    While a node denoises, each event carries a preview ``image`` (a small JPEG of the
    latents; ``image.width``/``height`` give the size of the final image it stands for) and
    ``step`` of ``total`` (step 0 is the starting noise). The server sends only the
    percentage; the SDK counts the steps and reads ``total`` from the node's ``steps`` or
    from the percentage (for second-order schedulers the steps are the scheduler's own).
    """

    node_id: str
    percentage: float | None = None
    message: str = ""
    image: ProgressImage | None = None
    step: int | None = None
    total: int | None = None

    def preview_bytes(self) -> bytes | None:
        """The preview image as JPEG bytes, when the server sent one."""
        if self.image is None:
            return None
        _, _, payload = self.image.data_url.partition(",")
        return base64.b64decode(payload)

    def _repr_jpeg_(self) -> bytes | None:
        """The step preview, for Jupyter/IPython to show inline."""
        return self.preview_bytes()


def denoise_step(
    invocation: dict[str, Any] | None, percentage: Any, index: int, total: int | None
) -> tuple[int, int | None]:
    """``(step, total)`` of the ``index``-th preview (0-based) of a denoising node (pure).

    ``total`` is what an earlier event of the node said, if anything. InvokeAI reports
    ``step / total`` as the percentage, the first preview (step 0) being the starting noise.
    Before the first non-zero percentage the total comes from the node's own ``steps`` /
    ``num_steps`` when it denoises the whole schedule (``denoising_start`` 0, end 1).
    """
    number = isinstance(percentage, (int, float)) and not isinstance(percentage, bool)
    if number and 0 < percentage <= 1 and index > 0:
        return index, max(index, round(index / percentage))
    if total is None and invocation is not None:
        steps = invocation.get("steps", invocation.get("num_steps"))
        whole = invocation.get("denoising_start", 0) in (0, None) and invocation.get(
            "denoising_end", 1) in (1, None)
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 and whole:
            total = steps
    return index, total


@dataclass(frozen=True, slots=True)
class ModelLoad(RunEvent):
    """The server loading a model for this run: ``model`` is its ``{key, hash, name, base,
    type}`` identifier, ``submodel_type`` the part loaded (``unet``, ``vae``, ...) or None.

    InvokeAI's model events name no queue item; a run claims one when it arrives while the
    run's node is the only one this client sees executing (one item per device at a time).
    """

    model: dict[str, Any]
    submodel_type: str | None = None

    @property
    def name(self) -> str:
        return str(self.model.get("name", ""))


@dataclass(frozen=True, slots=True)
class ModelLoadStarted(ModelLoad):
    """A model (part) began to load (also when it is served from the model cache)."""


@dataclass(frozen=True, slots=True)
class ModelLoadCompleted(ModelLoad):
    """A model (part) is loaded and ready."""


@dataclass(frozen=True, slots=True)
class NodeCompleted(RunEvent):
    """Node ``node_id`` finished; ``output`` is its mapped output (see ``WorkflowResult``)."""

    node_id: str
    output: Any = None
    node_type: str | None = None
    prepared_id: str | None = None


@dataclass(frozen=True, slots=True)
class NodeFailed(RunEvent):
    """Node ``node_id`` raised ``error_type``; the item fails with it."""

    node_id: str | None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None


def preview_image(image: Any) -> ProgressImage | None:
    """A progress frame's preview image, parsed (None when absent or malformed)."""
    if not isinstance(image, dict):
        return None
    try:
        return ProgressImage.model_validate(image)
    except ValueError:
        return None


def terminal_events(result: WorkflowResult) -> list[RunEvent]:
    """The events that end an item with ``result``: its failure (if any), then its status."""
    status = StatusChanged(
        result.item_id, result.batch_id, result.status,
        error_type=result.error_type, error_message=result.error_message,
    )
    if result.status != "failed":
        return [status]
    failed = NodeFailed(
        result.item_id, result.batch_id, result.error_node_id, result.error_type,
        result.error_message, result.error_traceback,
    )
    return [failed, status]
