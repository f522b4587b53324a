"""InvokeAIDouble: the double's server with every area installed (see the package doc)."""

from __future__ import annotations

from typing import Any

from . import boards, images, models, workflows
from .app import VERSION, DoubleApp
from .queue import SessionQueue

AREAS: tuple[str, ...] = ("boards", "images", "models", "queue", "workflows")
"""The areas of the double, each a module (``double/<area>``) whose ``install`` adds routes."""


class InvokeAIDouble(DoubleApp):
    """A fake InvokeAI server on 127.0.0.1 for tests (see :mod:`invokeai_client.testing`)."""

    def __init__(self, *, multiuser: bool = False, version: str = VERSION) -> None:
        super().__init__(multiuser=multiuser, version=version)
        boards.install(self)
        images.install(self)
        models.install(self)
        self.queue: SessionQueue = SessionQueue.install(self)
        """The session queue and its processor; ``queue.faults`` holds its fault switches."""
        workflows.install(self)

    async def start(self) -> InvokeAIDouble:
        """Listen on a free loopback port (see :attr:`url`)."""
        await self._start()
        return self

    async def __aenter__(self) -> InvokeAIDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_model(
        self,
        name: str,
        *,
        base: str = "sd-1",
        type: str = "main",
        format: str = "checkpoint",
        key: str | None = None,
        hash: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Install a model record (no weights) as the real server would describe it."""
        return models.add_model(self, name, base=base, type=type, format=format, key=key,
                                hash=hash, **fields)

    def add_workflow(
        self, workflow: dict[str, Any], *, category: str = "user", user_id: str = "system"
    ) -> dict[str, Any]:
        """Save a workflow in the library (``category="default"``: a built-in one)."""
        return workflows.add_workflow(self, workflow, category=category, user_id=user_id)
