"""The base of every server DTO: lenient, forward compatible."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ServerModel(BaseModel):
    """A value the server sent. Unknown fields are kept (newer servers add fields freely)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())
