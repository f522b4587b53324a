"""What a workflow handle uses of its client, as a protocol (no import of the client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._context import ClientContext
    from ..repositories.boards import BoardRepository
    from ..repositories.images import ImageRepository
    from ..repositories.models import ModelRepository
    from ..runs import RunManager


class WorkflowClient(Protocol):
    """The parts of an :class:`~invokeai_client.AsyncClient` a workflow handle works with:
    uploads and board lookups while preparing, runs to submit, models to sync, and the
    shared context for the few server calls of its own (generators)."""

    @property
    def context(self) -> ClientContext: ...

    @property
    def images(self) -> ImageRepository: ...

    @property
    def boards(self) -> BoardRepository: ...

    @property
    def models(self) -> ModelRepository: ...

    @property
    def runs(self) -> RunManager: ...
