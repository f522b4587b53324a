"""What a pool job gives back: one result per variation, the attempts behind it, progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..runs import FieldValues, WorkflowResult

__all__ = ["Attempt", "PoolResult", "Progress", "ServerProgress"]


@dataclass(frozen=True)
class Attempt:
    """One queue item the pool made for a variation and gave up on (its server went down).

    ``last_status`` is what the pool last knew of the item when it gave up: ``pending``,
    ``in_progress`` or ``unknown`` (being enqueued). An attempt that was ``in_progress`` may
    have run to the end on that server as well (see :attr:`PoolResult.may_have_run_twice`).
    """

    server: str
    item_id: int | None
    batch_id: str
    last_status: str


@dataclass(frozen=True)
class PoolResult:
    """The one result of one variation of a pool job.

    ``index`` is the variation's position in the sweep (the server's expansion order),
    ``inputs`` its varied values keyed as you named the inputs in the sweep (``{"Seed": 7}``
    for ``sweep={"Seed": ...}``; the label for an index; each value is also readable by its
    ``"node_id.field_name"``, see :class:`~invokeai_client.runs.FieldValues`; a local image
    file is given back as you gave it), ``server`` the URL whose item gave ``result``.
    ``attempts`` are earlier items for the same variation on servers that went down;
    ``saved`` the paths the images were saved to (when the job saves them).
    """

    index: int
    inputs: FieldValues
    server: str
    result: WorkflowResult
    attempts: tuple[Attempt, ...] = ()
    saved: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def item_id(self) -> int:
        return self.result.item_id

    @property
    def may_have_run_twice(self) -> bool:
        """Whether an earlier attempt may also have executed on a server that went down:
        it was running (or being enqueued) when the pool gave up on that server. Queued
        attempts are canceled when their server answers again; one the server started
        before that cancel arrived is counted in :attr:`Progress.duplicates`."""
        return any(a.last_status in ("in_progress", "unknown") for a in self.attempts)


@dataclass(frozen=True)
class ServerProgress:
    """One server's share of a job: items in flight and ended, rate, queue depth."""

    url: str
    state: str
    in_flight: int = 0
    completed: int = 0
    failed: int = 0
    rate: float | None = None
    queue_pending: int | None = None
    why: str | None = None


@dataclass(frozen=True)
class Progress:
    """Counts of a job while it runs: per status, per server, duplicates, ETA in seconds."""

    total: int
    counts: Mapping[str, int]
    servers: tuple[ServerProgress, ...]
    duplicates: int = 0
    eta: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Variations with their one result."""
        return sum(n for status, n in self.counts.items() if status not in ("pending", "sent"))
