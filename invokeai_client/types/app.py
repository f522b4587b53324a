"""Server information DTOs."""

from __future__ import annotations

from ._base import ServerModel


class AppVersion(ServerModel):
    """What ``GET /api/v1/app/version`` says: the server's version string."""

    version: str


class AuthStatus(ServerModel):
    """What ``GET /api/v1/auth/status`` says about multi-user mode (6.12+)."""

    setup_required: bool = False
    multiuser_enabled: bool = False
    strict_password_checking: bool = False
    admin_email: str | None = None


class User(ServerModel):
    """A user account of a multi-user server."""

    user_id: str
    email: str | None = None
    display_name: str | None = None
    is_admin: bool = False
    is_active: bool = True


class ServerInfo(ServerModel):
    """The server's version and mode, as reported by :meth:`AsyncClient.server_info`."""

    version: str
    multiuser: bool = False
    setup_required: bool = False
    user: User | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """The version as integers (``(6, 14, 2)``), for feature checks."""
        parts: list[int] = []
        for piece in self.version.split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            if not digits:
                break
            parts.append(int(digits))
        return tuple(parts)
