"""Pydantic models of what the InvokeAI server sends (DTOs and events)."""

from ._base import ServerModel
from .app import AuthStatus, ServerInfo, User

__all__ = ["AuthStatus", "ServerInfo", "ServerModel", "User"]
