"""Pydantic models of what the InvokeAI server sends (DTOs and events)."""

from . import queue
from ._base import ServerModel
from ._time import Timestamp, parse_timestamp
from .app import AuthStatus, ServerInfo, User
from .batch import Batch, BatchDatum, EnqueueBody
from .queue import *  # noqa: F403 (queue.__all__ is the one list of the queue's DTO names)

__all__ = [
    "AuthStatus",
    "Batch",
    "BatchDatum",
    "EnqueueBody",
    "ServerInfo",
    "ServerModel",
    "Timestamp",
    "User",
    "parse_timestamp",
]
__all__ += queue.__all__
