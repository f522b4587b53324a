"""What every repository shares: the client it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._http import HttpTransport
    from ..client import AsyncClient


class Repository:
    """A group of related server operations bound to one :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @property
    def _http(self) -> HttpTransport:
        return self._client._http

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"
