"""The base of every server DTO: lenient, forward compatible."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ServerModel(BaseModel):
    """A value the server sent. Unknown fields are kept (newer servers add fields freely)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


REDACTED = "redacted"
"""What a multi-user server puts in place of another user's ids in what a non-admin sees."""


def is_redacted(batch_id: str | None, user_id: str | None) -> bool:
    """Whether a queue item (or its event) is another user's sanitized copy: not for tracking."""
    return batch_id == REDACTED or user_id == REDACTED
