"""A plain-text progress display for one batch, driven by its events and live counts.

On a terminal one status line is redrawn in place (at most ten times a second):

    [########------------]  8/20  2 running  0 failed  3.1s  item 12: Blur

Elsewhere (a log, a pipe, CI) only finished items are written, one line each, so the output
stays readable and short.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ..runs import BatchRun, NodeStarted, RunEvent, StatusChanged, WorkflowResult
from ._console import Console

BAR_WIDTH = 20
REDRAW_EVERY = 0.1


class Progress:
    """Shows how far ``batch`` is; feed it events (:meth:`on_event`) and results
    (:meth:`finished`)."""

    def __init__(
        self,
        console: Console,
        batch: BatchRun,
        *,
        node_labels: Mapping[str, str],
        describe: Callable[[WorkflowResult], str],
        failure: Callable[[WorkflowResult], str],
    ) -> None:
        self.console = console
        self.batch = batch
        self.node_labels = node_labels
        self.describe = describe
        """How an item is named in lines (its swept values)."""
        self.failure = failure
        """What went wrong with a failed item, in a few words."""
        self.started = time.monotonic()
        self.done = 0
        self._activity = ""
        self._drawn_at = 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def on_event(self, event: RunEvent) -> None:
        """An event of the batch: update the status line."""
        if isinstance(event, NodeStarted):
            label = self.node_labels.get(event.node_id) or event.node_type or event.node_id
            self._activity = f"item {event.item_id}: {label}"
        elif isinstance(event, StatusChanged) and event.terminal:
            self._activity = ""
        self.draw()

    def finished(self, result: WorkflowResult) -> None:
        """An item finished: a line for it (on a terminal only when it did not complete)."""
        self.done += 1
        what = self.describe(result)
        line = f"item {result.item_id} {result.status}" + (f": {what}" if what else "")
        if not result.ok:
            why = self.failure(result)
            line += f" - {why}" if why else ""
        if not self.console.live:
            total = len(self.batch)
            width = len(str(total))
            self.console.note(f"[{self.done:>{width}}/{total}] {line} ({self.elapsed:.1f}s)")
        elif not result.ok:
            self.console.note(line)
        self.draw(force=True)

    def draw(self, *, force: bool = False) -> None:
        if not self.console.live:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_EVERY:
            return
        self._drawn_at = now
        counts = self.batch.counts
        total = max(counts.total, 1)
        finished = counts.completed + counts.failed + counts.canceled
        filled = round(BAR_WIDTH * finished / total)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        parts = [
            f"[{bar}]",
            f"{finished}/{counts.total}",
            f"{counts.in_progress} running",
            f"{counts.failed} failed",
        ]
        if counts.canceled:
            parts.append(f"{counts.canceled} canceled")
        parts.append(f"{self.elapsed:.1f}s")
        if self._activity:
            parts.append(self._activity)
        self.console.status("  ".join(parts))

    def close(self) -> None:
        self.console.end_status()
