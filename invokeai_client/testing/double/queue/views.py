"""Queue items as the REST routes show them: full items and summaries, redacted for other
users in multi-user mode, with nulls left out where the server leaves them out."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..auth import is_owner_or_admin
from .session import session_dict

if TYPE_CHECKING:
    from .state import Item


SUMMARY_FIELDS = (
    "item_id", "created_at", "status", "device", "started_at", "completed_at", "origin",
    "destination", "batch_id", "user_id", "user_display_name", "user_email", "field_values",
    "parent_item_id",
)
"""What a queue item summary holds (``item_summaries_by_ids``), in the server's order."""

_REDACTED: dict[str, Any] = {
    "user_id": "redacted", "user_display_name": None, "user_email": None,
    "batch_id": "redacted", "session_id": "redacted", "origin": None, "destination": None,
    "priority": 0, "field_values": None, "retried_from_item_id": None, "workflow": None,
    "error_type": None, "error_message": None, "error_traceback": None,
}
"""What another user sees of an item in multi-user mode (besides a blank session)."""


def item_dict(
    item: Item, users: Mapping[str, dict[str, Any]], viewer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The queue item as ``GET i/{id}`` shows it to ``viewer`` (None: unredacted)."""
    data = _fields(item, users)
    data["session"] = (
        item.session.to_dict() if item.session is not None
        else session_dict(item.session_id, item.plan.graph(item.nodes()))
    )
    data["workflow"] = item.plan.workflow
    if viewer is not None and not is_owner_or_admin(viewer, item.user_id):
        data.update(_REDACTED)
        data["session"] = session_dict(
            "redacted", {"id": str(uuid.uuid4()), "nodes": {}, "edges": []}
        )
    return data


def summary(
    item: Item, users: Mapping[str, dict[str, Any]], viewer: dict[str, Any]
) -> dict[str, Any]:
    """The item's summary as ``viewer`` sees it."""
    data = _fields(item, users)
    if not is_owner_or_admin(viewer, item.user_id):
        data.update(_REDACTED)
    return {name: data[name] for name in SUMMARY_FIELDS}


def _fields(item: Item, users: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Every field of a queue item but its session and workflow, in the server's order."""
    plan = item.plan
    display_name, email = _user_display(users, item.user_id)
    return {
        "item_id": item.item_id,
        "status": item.status,
        "status_sequence": item.status_sequence,
        "priority": item.priority,
        "batch_id": plan.batch_id,
        "origin": plan.origin,
        "destination": plan.destination,
        "session_id": item.session_id,
        **item.outcome(),
        "queue_id": item.queue_id,
        "user_id": item.user_id,
        "user_display_name": display_name,
        "user_email": email,
        "field_values": item.field_values,
        "retried_from_item_id": item.retried_from_item_id,
        "device": item.device,
        "workflow_call_id": None,
        "parent_item_id": None,
        "parent_session_id": None,
        "root_item_id": None,
        "workflow_call_depth": None,
    }


def without_none(value: Any) -> Any:
    """What ``response_model_exclude_none`` does to a JSON value."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def _user_display(
    users: Mapping[str, dict[str, Any]], user_id: str
) -> tuple[str | None, str | None]:
    if user_id == "system":
        return "System", "system@system.invokeai"
    for user in users.values():
        if user["user_id"] == user_id:
            return user.get("display_name"), user.get("email")
    return None, None
