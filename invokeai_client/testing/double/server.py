"""InvokeAIDouble: the double's server with every area installed (see the package doc)."""

from __future__ import annotations

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
        # InvokeAI 6.13 sends every item event twice to a single-user socket.
        self.queue.faults.duplicate_events = self.features.supports("doubled_events")

    async def start(self) -> InvokeAIDouble:
        """Listen on a free loopback port (see :attr:`url`)."""
        await self._start()
        return self

    async def __aenter__(self) -> InvokeAIDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    add_model = models.add_model
    """Install a model record (no weights) as the real server would describe it."""
    add_workflow = workflows.add_workflow
    """Save a workflow in the library (``category="default"``: a built-in one)."""
