"""Runs in Jupyter: a live progress widget (bar, status, step preview) while a run or batch
works, and its images shown inline.

.. code-block:: python

    from invokeai_client.notebook import progress

    run = await wf.submit()
    result = await progress(run)      # a bar and the step previews, live, under the cell
    result.image                      # shown inline (ImageRef._repr_png_)

The widget needs ipywidgets (``pip install "invokeai-client[notebook]"``); without it, or
outside a notebook, one text line per finished node or item is printed instead.
Images of results (``ImageRef``, the sync ``Client``'s too) and step previews
(``NodeProgress``) display inline by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar, overload

from .runs import (
    BatchRun,
    NodeCompleted,
    NodeProgress,
    NodeStarted,
    RunEvent,
    StatusChanged,
    WorkflowResult,
    WorkflowRun,
)

__all__ = ["ProgressWidget", "progress"]

T = TypeVar("T")


class ProgressWidget:
    """A progress bar, a status line and the latest step preview (ipywidgets), or plain
    printed lines when ipywidgets is missing."""

    def __init__(self, total: int, title: str) -> None:
        self.total = max(total, 1)
        self.title = title
        self.done = 0
        self._widgets: dict[str, Any] | None = None
        try:
            ipywidgets: Any = importlib.import_module("ipywidgets")
            display: Any = importlib.import_module("IPython.display").display
        except ImportError:
            return
        bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=title[:20])
        label = ipywidgets.Label(value="queued")
        preview = ipywidgets.Image(format="jpeg", layout={"display": "none"})
        self._widgets = {"bar": bar, "label": label, "preview": preview}
        display(ipywidgets.VBox([ipywidgets.HBox([bar, label]), preview]))

    def show(self, fraction: float, text: str) -> None:
        """Move the bar to ``fraction`` (0..1) and say ``text``."""
        if self._widgets is None:
            return
        self._widgets["bar"].value = max(0.0, min(1.0, fraction))
        self._widgets["label"].value = text

    def preview(self, jpeg: bytes) -> None:
        """Show a step preview."""
        if self._widgets is not None:
            self._widgets["preview"].value = jpeg
            self._widgets["preview"].layout.display = ""

    def line(self, text: str) -> None:
        """A line of text: printed without widgets, shown in the label with them."""
        if self._widgets is None:
            print(text, flush=True)
        else:
            self._widgets["label"].value = text


@overload
async def progress(target: WorkflowRun) -> WorkflowResult: ...


@overload
async def progress(target: BatchRun) -> list[WorkflowResult]: ...


async def progress(target: WorkflowRun | BatchRun) -> WorkflowResult | list[WorkflowResult]:
    """Show a run's (or a batch's) progress under the cell while awaiting it; returns what
    ``await target`` returns (a failed single run raises as ``await run`` does)."""
    if isinstance(target, BatchRun):
        widget = ProgressWidget(len(target), f"{len(target)} items")
        return await _follow(widget, target, target.events(), target.results())
    widget = ProgressWidget(target.batch.node_count, f"item {target.item_id}")
    return await _follow(widget, target, target.events(), target.result())


async def _follow(
    widget: ProgressWidget,
    target: WorkflowRun | BatchRun,
    events: AsyncIterator[RunEvent],
    outcome: Awaitable[T],
) -> T:
    watcher = asyncio.ensure_future(_watch(widget, target, events))
    try:
        result = await outcome
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
    if isinstance(target, BatchRun):
        counts = target.counts
        widget.show(1.0, f"{counts.completed} completed, {counts.failed} failed")
    elif isinstance(result, WorkflowResult):
        widget.show(1.0, result.status)
    return result


async def _watch(
    widget: ProgressWidget, target: WorkflowRun | BatchRun, events: AsyncIterator[RunEvent]
) -> None:
    """Move the widget along with the events."""
    nodes_done = 0
    async for event in events:
        if isinstance(target, BatchRun):
            _batch_event(widget, target, event)
            continue
        if isinstance(event, NodeCompleted):
            nodes_done += 1
            widget.show(nodes_done / widget.total, f"{event.node_type or event.node_id} done")
            if widget._widgets is None:
                widget.line(f"[{nodes_done}/{widget.total}] {event.node_type or event.node_id}")
        elif isinstance(event, NodeStarted):
            widget.show(nodes_done / widget.total, f"{event.node_type or event.node_id}...")
        elif isinstance(event, NodeProgress):
            if event.percentage is not None:
                widget.show((nodes_done + event.percentage) / widget.total,
                            event.message or f"{event.percentage:.0%}")
            jpeg = _preview(event)
            if jpeg is not None:
                widget.preview(jpeg)


def _batch_event(widget: ProgressWidget, batch: BatchRun, event: RunEvent) -> None:
    if isinstance(event, StatusChanged) and event.terminal:
        counts = batch.counts
        finished = counts.completed + counts.failed + counts.canceled
        widget.show(finished / widget.total, f"{finished}/{widget.total} items")
        if widget._widgets is None:
            widget.line(f"[{finished}/{widget.total}] item {event.item_id} {event.status}")
    elif isinstance(event, NodeProgress):
        jpeg = _preview(event)
        if jpeg is not None:
            widget.preview(jpeg)


def _preview(event: NodeProgress) -> bytes | None:
    try:
        return event.preview_bytes()
    except ValueError:  # a malformed data URL: no preview rather than a broken widget
        return None
