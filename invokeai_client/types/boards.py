"""Board DTOs: boards and the outcomes of board operations."""

from __future__ import annotations

from pydantic import Field

from ._base import ServerModel
from ._time import Timestamp

__all__ = ["UNCATEGORIZED", "Board", "BoardRef", "DeleteBoardResult"]

UNCATEGORIZED = "none"
"""The id InvokeAI uses for "no board": the uncategorized pseudo-board."""


class Board(ServerModel):
    """A board (a named gallery folder) as the server describes it.

    ``board_visibility`` is ``private``, ``shared`` or ``public`` (multi-user servers,
    6.13+); ``image_count`` counts the images on the board when it was read.
    """

    board_id: str
    board_name: str = ""
    user_id: str | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    deleted_at: Timestamp = None
    cover_image_name: str | None = None
    archived: bool = False
    board_visibility: str = "private"
    image_count: int = 0
    video_count: int = 0
    asset_count: int = 0
    cover_video_name: str | None = None
    owner_username: str | None = None

    @property
    def id(self) -> str:
        return self.board_id

    @property
    def name(self) -> str:
        return self.board_name


class DeleteBoardResult(ServerModel):
    """What deleting a board did: images deleted, or only taken off the board (kept)."""

    board_id: str
    deleted_board_images: list[str] = Field(default_factory=list)
    deleted_images: list[str] = Field(default_factory=list)
    deleted_board_videos: list[str] = Field(default_factory=list)
    deleted_videos: list[str] = Field(default_factory=list)
    failed_images: list[str] = Field(default_factory=list)
    failed_videos: list[str] = Field(default_factory=list)


BoardRef = str | Board
"""A board as callers may name it: its id, a :class:`Board`, its name, or ``"none"``."""
