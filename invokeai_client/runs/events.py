"""Typed events of one run, as ``run.events()`` and ``batch.events()`` yield them.

They are the server's socket events of one queue item, filtered (no repeats, no other
users' copies), put in a sensible order and given mapped values:

- :class:`StatusChanged` - the item moved to ``in_progress``, ``completed``, ``failed``,
  ``canceled``... (the last one a run yields is terminal);
- :class:`NodeStarted` / :class:`NodeCompleted` (with the node's mapped output) /
  :class:`NodeFailed` - one node's execution;
- :class:`NodeProgress` - a node's progress: ``percentage`` (0..1 or None), ``message``,
  and a preview image while denoising.

A failing item's :class:`NodeFailed` always comes before its terminal
:class:`StatusChanged` (the server sends them the other way round).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ..types.wire_events import ProgressImage

__all__ = [
    "NodeCompleted",
    "NodeFailed",
    "NodeProgress",
    "NodeStarted",
    "RunEvent",
    "StatusChanged",
]


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
    """Progress of node ``node_id``: ``percentage`` is 0..1, or None when unknown."""

    node_id: str
    percentage: float | None = None
    message: str = ""
    image: ProgressImage | None = None

    def preview_bytes(self) -> bytes | None:
        """The preview image as JPEG bytes, when the server sent one."""
        if self.image is None:
            return None
        _, _, payload = self.image.data_url.partition(",")
        return base64.b64decode(payload)

    def _repr_jpeg_(self) -> bytes | None:
        """The step preview, for Jupyter/IPython to show inline."""
        return self.preview_bytes()


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
