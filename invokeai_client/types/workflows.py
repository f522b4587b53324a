"""Workflow library records (``/api/v1/workflows``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import ServerModel
from ._time import Timestamp


class CallCompatibility(ServerModel):
    """Whether a library workflow can be called by a ``call_saved_workflow`` node (6.14+)."""

    is_callable: bool = False
    reason: str | None = None
    message: str | None = None


class _LibraryWorkflow(ServerModel):
    """What every library answer says about a workflow: id, name, owner, times, thumbnail."""

    workflow_id: str
    name: str = ""
    user_id: str | None = None
    is_public: bool = False
    created_at: Timestamp = None
    updated_at: Timestamp = None
    opened_at: Timestamp = None
    thumbnail_url: str | None = None
    call_saved_workflow_compatibility: CallCompatibility | None = None


class WorkflowSummary(_LibraryWorkflow):
    """A workflow as the library lists it (no graph): id, name, owner, category, tags."""

    description: str = ""
    category: str = "user"
    tags: str = ""

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class WorkflowRecord(_LibraryWorkflow):
    """A library workflow with its JSON (``workflow``)."""

    workflow: dict[str, Any] = Field(default_factory=dict)

    @property
    def category(self) -> str:
        meta = self.workflow.get("meta")
        return str(meta.get("category", "user")) if isinstance(meta, dict) else "user"
