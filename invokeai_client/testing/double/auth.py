"""Accounts of the double (multi-user mode): users, bearer tokens and ``/api/v1/auth/*``."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .http import error, json_response

Route = Callable[[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]], None]

SYSTEM_USER: dict[str, Any] = {"user_id": "system", "is_admin": True, "email": None}
"""Who every request is in single-user mode."""


def is_owner_or_admin(user: dict[str, Any], owner_id: str | None) -> bool:
    """Whether ``user`` (from :meth:`Accounts.current_user`) may act on what ``owner_id``
    owns: InvokeAI's rule of the owner or an admin."""
    return bool(user.get("is_admin")) or owner_id == user["user_id"]


def public(user: dict[str, Any]) -> dict[str, Any]:
    """A user record as the server shows it (no password)."""
    return {k: v for k, v in user.items() if k != "password"}


class Accounts:
    """Users (by email) and the tokens issued to them; ``multiuser`` turns auth on."""

    def __init__(self, *, multiuser: bool) -> None:
        self.multiuser = multiuser
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}

    def add_user(self, email: str, password: str, *, is_admin: bool = False) -> dict[str, Any]:
        """Create an account; the first one is the admin in multi-user mode."""
        user = {
            "user_id": secrets.token_hex(8),
            "email": email,
            "display_name": email.split("@")[0],
            "is_admin": is_admin,
            "is_active": True,
            "password": password,
        }
        self.users[email] = user
        return user

    def issue_token(self, user: dict[str, Any]) -> str:
        token = f"double.{secrets.token_urlsafe(24)}"
        self.tokens[token] = user["user_id"]
        return token

    def user_for_token(self, token: str | None) -> dict[str, Any] | None:
        user_id = self.tokens.get(token or "")
        return next((u for u in self.users.values() if u["user_id"] == user_id), None)

    def current_user(self, request: web.Request) -> dict[str, Any]:
        """The request's user; raises 401 in multi-user mode without a valid token."""
        if not self.multiuser:
            return SYSTEM_USER.copy()
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise error(401, "Authentication required")
        user = self.user_for_token(header[len("Bearer "):])
        if user is None:
            raise error(401, "Invalid or expired authentication token")
        return user

    def install(self, route: Route) -> None:
        """Add the ``/api/v1/auth`` routes."""
        route("GET", "/api/v1/auth/status", self._status)
        route("POST", "/api/v1/auth/login", self._login)
        route("GET", "/api/v1/auth/me", self._me)

    async def _status(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "setup_required": self.multiuser and not self.users,
                "multiuser_enabled": self.multiuser,
                "strict_password_checking": False,
                "admin_email": None,
            }
        )

    async def _login(self, request: web.Request) -> web.Response:
        if not self.multiuser:
            raise error(403, "Multiuser mode is disabled. Authentication is not required.")
        body = await request.json()
        user = self.users.get(body.get("email", ""))
        if user is None or user["password"] != body.get("password"):
            raise error(401, "Incorrect email or password")
        return json_response(
            {"token": self.issue_token(user), "user": public(user), "expires_in": 86400}
        )

    async def _me(self, request: web.Request) -> web.Response:
        if not self.multiuser:
            raise error(401, "Missing authentication credentials")
        return json_response(public(self.current_user(request)))
