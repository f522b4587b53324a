"""Progress of N items for any command: rich's bar with rate and ETA on a terminal, one line
per finished item elsewhere.

On a terminal (the ``cli`` extra installs rich) stderr shows one live display, redrawn in
place and fitted to the terminal's width (a narrow one drops the extra columns instead of
wrapping)::

    ⠹ Noise sweep ━━━━━━━━━━━╺━━━━  8/20  2 running  0 failed  3.2/s  0:00:03 ETA 0:00:04

Elsewhere (a log, a pipe, CI; or without rich) only finished items are written, one line
each, so the output stays readable and short::

    [3/8] item 17 completed: Seed=2, Blur radius=0 (0.4s)

:class:`ProgressDisplay` knows nothing about batches (``invokeai-client batch`` uses it too);
:class:`BatchProgress` feeds it from one :class:`~invokeai_client.BatchRun`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any

from ..runs import BatchRun, NodeStarted, RunEvent, StatusChanged, WorkflowResult
from ._console import Console

if TYPE_CHECKING:
    import rich.progress

NARROW = 60
"""Below this many columns the display keeps only the bar, the count and the ETA."""


class ProgressDisplay:
    """How far N items are. Use as a context manager; call :meth:`update` with counts and
    :meth:`finished` with a line per item as it ends."""

    def __init__(self, console: Console, *, total: int, title: str = "") -> None:
        self.console = console
        self.total = total
        self.title = title
        self.started = time.monotonic()
        self.done = 0
        self._progress: rich.progress.Progress | None = None
        self._task: Any = None
        self._cm: Any = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __enter__(self) -> ProgressDisplay:
        self.started = time.monotonic()
        if self.console.live:
            self._progress = _make_rich_progress(self.console)
        if self._progress is not None:
            self._task = self._progress.add_task(
                self.title, total=self.total, status="", activity=""
            )
            self._cm = self.console.display(self._progress)
            self._cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)
            self._cm = None
        self._progress = None

    def update(
        self,
        *,
        done: int | None = None,
        total: int | None = None,
        running: int = 0,
        failed: int = 0,
        canceled: int = 0,
        activity: str | None = None,
    ) -> None:
        """New counts (and what is happening now, shown when there is room)."""
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        if self._progress is None:
            return
        status = f"{running} running  {failed} failed"
        if canceled:
            status += f"  {canceled} canceled"
        fields: dict[str, Any] = {"status": status}
        if activity is not None:
            fields["activity"] = activity
        self._progress.update(self._task, completed=self.done, total=self.total, **fields)

    def set_title(self, title: str) -> None:
        """Change the title the live display shows before the bar (e.g. the current step)."""
        self.title = title
        if self._progress is not None:
            self._progress.update(self._task, description=title)

    def finished(self, line: str, *, ok: bool = True) -> None:
        """An item ended: off a terminal a numbered line; on one, a line only if not ok."""
        self.done += 1
        if self._progress is None:
            width = len(str(self.total))
            self.console.note(f"[{self.done:>{width}}/{self.total}] {line} ({self.elapsed:.1f}s)")
        elif not ok:
            self.console.note(line)
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done)


def _make_rich_progress(console: Console) -> rich.progress.Progress | None:
    """rich's Progress with the columns that fit; None without rich (plain lines then)."""
    try:
        from rich import progress as rp
    except ImportError:  # pragma: no cover - the cli extra installs rich
        console.live = False
        return None
    width = console.stderr_console.width
    columns: list[rp.ProgressColumn | str] = []
    if width >= NARROW:
        columns += [rp.SpinnerColumn(), rp.TextColumn("{task.description}")]
    columns += [
        rp.BarColumn(bar_width=None if width >= NARROW else max(8, width - 28)),
        rp.MofNCompleteColumn(),
    ]
    if width >= NARROW:
        columns += [rp.TextColumn("{task.fields[status]}"), _RateColumn(),
                    rp.TimeElapsedColumn()]
    columns += [rp.TextColumn("ETA"), rp.TimeRemainingColumn()]
    if width >= 2 * NARROW:
        columns.append(rp.TextColumn("{task.fields[activity]}"))
    return rp.Progress(
        *columns, console=console.stderr_console, transient=False, redirect_stdout=False,
        redirect_stderr=False, refresh_per_second=8, expand=False,
    )


def _rate_text(task: rich.progress.Task) -> str:
    speed = task.finished_speed or task.speed
    if not speed:
        return "-/s"
    return f"{speed:.1f}/s" if speed >= 0.95 else f"{60 * speed:.1f}/min"


try:
    from rich.progress import ProgressColumn as _Column
    from rich.text import Text as _Text

    class _RateColumn(_Column):
        """Items per second (per minute when slower than one a second)."""

        def render(self, task: rich.progress.Task) -> _Text:
            return _Text(_rate_text(task))

except ImportError:  # pragma: no cover - the cli extra installs rich
    pass


@dataclass(eq=False)
class BatchProgress:
    """Feeds a :class:`ProgressDisplay` from one batch's events, counts and results."""

    display: ProgressDisplay
    batch: BatchRun
    _: KW_ONLY
    node_labels: Mapping[str, str]
    describe: Callable[[WorkflowResult], str]
    """How an item is named in lines (its swept values)."""
    failure: Callable[[WorkflowResult], str]
    """What went wrong with a failed item, in a few words."""

    def on_event(self, event: RunEvent) -> None:
        """An event of the batch: new counts, and what runs now."""
        activity: str | None = None
        if isinstance(event, NodeStarted):
            label = self.node_labels.get(event.node_id) or event.node_type or event.node_id
            activity = f"item {event.item_id}: {label}"
        elif isinstance(event, StatusChanged) and event.terminal:
            activity = ""
        self._update(activity)

    def finished(self, result: WorkflowResult) -> None:
        """An item finished: its line (see :meth:`ProgressDisplay.finished`)."""
        what = self.describe(result)
        line = f"item {result.item_id} {result.status}" + (f": {what}" if what else "")
        if not result.ok:
            why = self.failure(result)
            line += f" - {why}" if why else ""
        self.display.finished(line, ok=result.ok)
        self._update(None)

    def _update(self, activity: str | None) -> None:
        counts = self.batch.counts
        self.display.update(
            total=max(counts.total, len(self.batch)),
            running=counts.in_progress,
            failed=counts.failed,
            canceled=counts.canceled,
            activity=activity,
        )
