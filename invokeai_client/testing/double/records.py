"""Records every area of the double shares: images (``double.images``) and timestamps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

_SECOND: list[Any] = [-1, ""]


def db_timestamp() -> str:
    """Now, as InvokeAI's SQLite records write it: ``"YYYY-MM-DD HH:MM:SS.mmm"`` in UTC."""
    now = time.time()
    second = int(now)
    if second != _SECOND[0]:  # formatting a date is slow; do it once a second
        _SECOND[0] = second
        _SECOND[1] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    return f"{_SECOND[1]}.{int((now - second) * 1000):03d}"


@dataclass
class DoubleImage:
    """One image the double holds: its record (the fields of InvokeAI's ImageDTO) and PNG bytes.

    Every area of the double shares ``InvokeAIDouble.images`` (name -> record): the queue adds
    the images its nodes save, the image routes serve and change them.
    """

    image_name: str
    data: bytes
    width: int
    height: int
    image_origin: str = "internal"
    image_category: str = "general"
    is_intermediate: bool = False
    session_id: str | None = None
    node_id: str | None = None
    board_id: str | None = None
    starred: bool = False
    metadata: dict[str, Any] | None = None
    workflow: str | None = None
    graph: str | None = None
    user_id: str = "system"
    created_at: str = field(default_factory=db_timestamp)
    updated_at: str = field(default_factory=db_timestamp)
    deleted_at: str | None = None
