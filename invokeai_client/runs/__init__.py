"""Runs: submitted work on its way through the server, and what it produced.

- :class:`WorkflowRun` - one queue item: ``await run`` gives its :class:`WorkflowResult`,
  ``run.events()`` its typed events, ``run.cancel()`` cancels it.
- :class:`BatchRun` - the items of one enqueue call: ``as_completed()``, ``results()``, live
  ``counts``, ``cancel()``.
- :class:`RunManager` - ``client.runs``: submit raw graphs or enqueue bodies, attach to items.
- :class:`WorkflowResult` / :class:`ImageRef` - outputs mapped to Python values.
"""

from . import events
from ._handles import BatchRun, WorkflowRun
from ._manager import RunManager
from .events import *  # noqa: F403 - the event classes (events.__all__, below)
from .results import FieldValues, ImageRef, WorkflowResult

__all__ = [
    "BatchRun",
    "FieldValues",
    "ImageRef",
    "RunManager",
    "WorkflowResult",
    "WorkflowRun",
]
__all__ += events.__all__
