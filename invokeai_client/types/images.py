"""Image DTOs: image records, embedded workflows, and bulk results."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from .._answers import reading
from ._base import ServerModel
from ._time import Timestamp

__all__ = ["IMAGE_CATEGORIES", "EmbeddedWorkflow", "ImageDTO", "ImagesResult"]

IMAGE_CATEGORIES = ("general", "mask", "control", "user", "other")
"""Image categories InvokeAI knows (``user`` for uploads, ``general`` for generations)."""


class ImageDTO(ServerModel):
    """An image record: its name, size, category, board, flags and (relative) URLs."""

    image_name: str
    image_url: str | None = None
    thumbnail_url: str | None = None
    image_origin: str = "internal"
    image_category: str = "general"
    width: int = 0
    height: int = 0
    created_at: Timestamp = None
    updated_at: Timestamp = None
    deleted_at: Timestamp = None
    is_intermediate: bool = False
    session_id: str | None = None
    node_id: str | None = None
    starred: bool = False
    has_workflow: bool = False
    image_subfolder: str | None = None
    board_id: str | None = None

    @property
    def name(self) -> str:
        return self.image_name

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return (self.width, self.height)


class EmbeddedWorkflow(ServerModel):
    """The workflow and the graph saved inside an image (either may be absent).

    The server sends both as JSON *strings*; here they are parsed into dicts. Text that is not
    valid JSON is kept in ``workflow_text`` / ``graph_text`` and the dict is None.
    """

    workflow: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None
    workflow_text: str | None = None
    graph_text: str | None = None

    @classmethod
    def from_server(cls, data: Any) -> EmbeddedWorkflow:
        data = data if isinstance(data, dict) else {}
        workflow_text = data.get("workflow")
        graph_text = data.get("graph")
        return cls(
            workflow=_parse_json_object(workflow_text),
            graph=_parse_json_object(graph_text),
            workflow_text=workflow_text if isinstance(workflow_text, str) else None,
            graph_text=graph_text if isinstance(graph_text, str) else None,
        )


def _parse_json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _names(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a list of names, got {type(value).__name__}")
    return value


class ImagesResult(ServerModel):
    """Outcome of an operation on several images: names ``done``, names ``failed``, and the
    boards whose contents changed (``"none"`` is the uncategorized pseudo-board)."""

    done: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    affected_boards: list[str] = Field(default_factory=list)

    @classmethod
    def from_server(cls, data: Any, done_key: str) -> ImagesResult:
        data = data if isinstance(data, dict) else {}
        with reading():
            return cls(
                done=_names(data.get(done_key)),
                failed=_names(data.get("failed_images")),
                affected_boards=_names(data.get("affected_boards")),
            )

    def merge(self, other: ImagesResult) -> ImagesResult:
        """Both outcomes together (for operations sent in several chunks)."""
        boards = list(dict.fromkeys([*self.affected_boards, *other.affected_boards]))
        return ImagesResult(
            done=[*self.done, *other.done],
            failed=[*self.failed, *other.failed],
            affected_boards=boards,
        )
