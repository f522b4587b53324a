"""Runs: submitted work on its way through the server, and what it produced.

- :class:`WorkflowRun` - one queue item: ``await run`` gives its :class:`WorkflowResult`,
  ``run.events()`` its typed events, ``run.cancel()`` cancels it.
- :class:`BatchRun` - the items of one enqueue call: ``as_completed()``, ``results()``, live
  ``counts``, ``cancel()``.
- :class:`RunManager` - ``client.runs``: submit raw graphs or enqueue bodies, attach to items.
- :class:`WorkflowResult` / :class:`ImageRef` - outputs mapped to Python values.
"""

from ._handles import BatchRun, WorkflowRun
from ._manager import RunManager
from .events import (
    ModelLoad,
    ModelLoadCompleted,
    ModelLoadStarted,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    RunEvent,
    StatusChanged,
)
from .results import FieldValues, ImageRef, WorkflowResult

__all__ = [
    "BatchRun",
    "FieldValues",
    "ImageRef",
    "ModelLoad",
    "ModelLoadCompleted",
    "ModelLoadStarted",
    "NodeCompleted",
    "NodeFailed",
    "NodeProgress",
    "NodeStarted",
    "RunEvent",
    "RunManager",
    "StatusChanged",
    "WorkflowResult",
    "WorkflowRun",
]
