"""Session queue DTOs: queue items, batch and queue status, enqueue and bulk results.

Shapes of InvokeAI 6.14 (``session_queue_common.py``); fields newer than 6.0 are optional
with defaults, and unknown fields are kept, so older and newer servers parse too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import ServerModel, is_redacted
from ._time import Timestamp

__all__ = [
    "QUEUE_STATUSES",
    "TERMINAL_STATUSES",
    "BatchStatus",
    "EnqueueBatchResult",
    "InvocationCacheStatus",
    "NodeFieldValue",
    "ProcessorStatus",
    "QueueAndProcessorStatus",
    "QueueCounts",
    "QueueCountsByDestination",
    "QueueStatus",
    "RetryItemsResult",
    "SessionQueueItem",
    "SessionQueueItemSummary",
    "is_batch_item",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
"""Queue item statuses an item never leaves."""
QUEUE_STATUSES = ("pending", "in_progress", "completed", "failed", "canceled")
"""Every status a queue item can have (InvokeAI 6.14)."""


def _is_scalar_batch_item(value: Any) -> bool:
    if isinstance(value, bool):
        return False  # JSON true would reach the node as the number 1
    if isinstance(value, (int, float, str)):
        return True
    if isinstance(value, dict) and len(value) == 1:
        ((key, name),) = value.items()
        return key in ("image_name", "video_name") and isinstance(name, str)
    return False


def is_batch_item(value: Any) -> bool:
    """Whether InvokeAI's ``BatchDatum.items`` can carry ``value`` (API form).

    A batch item is a string, a number, an image field ``{"image_name": ...}``, a video
    field ``{"video_name": ...}``, or a list of those. Anything else (a color, a board, a
    model, a boolean) cannot be swept in a batch: set it per run instead.
    """
    if isinstance(value, list):
        return all(_is_scalar_batch_item(item) for item in value)
    return _is_scalar_batch_item(value)


class NodeFieldValue(ServerModel):
    """A value substituted into one node field of a queue item (from batch ``data``)."""

    node_path: str
    field_name: str
    value: Any = None


class _ItemCommon(ServerModel):
    item_id: int
    status: str = "pending"
    batch_id: str = ""
    origin: str | None = None
    destination: str | None = None
    created_at: Timestamp = None
    started_at: Timestamp = None
    completed_at: Timestamp = None
    user_id: str | None = None
    user_display_name: str | None = None
    user_email: str | None = None
    field_values: list[NodeFieldValue] | None = None
    device: str | None = None
    parent_item_id: int | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the item is done (completed, failed or canceled)."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_redacted(self) -> bool:
        """Another user's item as a non-admin sees it (multi-user): ids are ``"redacted"``."""
        return is_redacted(self.batch_id, self.user_id)


class SessionQueueItemSummary(_ItemCommon):
    """A queue item without its session (``item_summaries_by_ids``, 6.14.1+)."""


class SessionQueueItem(_ItemCommon):
    """A full queue item: status, errors, timings and the session (graph, results).

    ``session`` is the server's GraphExecutionState as sent; :meth:`outputs_of` reads the
    results of one of the graph's nodes out of it.
    """

    queue_id: str = "default"
    status_sequence: int | None = None
    priority: int = 0
    session_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    updated_at: Timestamp = None
    retried_from_item_id: int | None = None
    workflow_call_id: str | None = None
    parent_session_id: str | None = None
    root_item_id: int | None = None
    workflow_call_depth: int | None = None
    session: dict[str, Any] = Field(default_factory=dict)
    workflow: dict[str, Any] | None = None

    def outputs_of(self, node_id: str) -> list[dict[str, Any]]:
        """The outputs of graph node ``node_id`` (one per execution; several under
        ``iterate``), in execution order, as the server sent them."""
        prepared = (self.session.get("source_prepared_mapping") or {}).get(node_id) or []
        results = self.session.get("results") or {}
        return [results[pid] for pid in prepared if pid in results]


class QueueCounts(ServerModel):
    """Item counts by status."""

    pending: int = 0
    in_progress: int = 0
    waiting: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    total: int = 0

    @property
    def done(self) -> int:
        """Items that reached a terminal status."""
        return self.completed + self.failed + self.canceled


class BatchStatus(QueueCounts):
    """Counts of the items of one batch (one enqueue call)."""

    queue_id: str = "default"
    batch_id: str = ""
    origin: str | None = None
    destination: str | None = None

    @property
    def is_done(self) -> bool:
        """Whether every item of the batch is terminal."""
        return self.total > 0 and self.done == self.total


class QueueCountsByDestination(QueueCounts):
    """Counts of the items sent to one ``destination``."""

    queue_id: str = "default"
    destination: str = ""


class QueueStatus(QueueCounts):
    """The queue's counts plus the item being processed (``item_id`` None when idle)."""

    queue_id: str = "default"
    item_id: int | None = None
    batch_id: str | None = None
    session_id: str | None = None
    user_pending: int | None = None
    user_in_progress: int | None = None


class ProcessorStatus(ServerModel):
    """Whether the queue processor is started (not paused) and busy right now."""

    is_started: bool = False
    is_processing: bool = False


class QueueAndProcessorStatus(ServerModel):
    """``GET /queue/{id}/status``: the queue's counts and the processor's state."""

    queue: QueueStatus
    processor: ProcessorStatus = Field(default_factory=ProcessorStatus)


class EnqueueBatchResult(ServerModel):
    """What ``enqueue_batch`` answered: how many items were made, and their ids.

    ``batch`` is the batch as the server echoed it (node defaults filled in). The server
    sends ``item_ids`` newest first; :attr:`item_ids_ascending` is execution order.
    """

    queue_id: str = "default"
    enqueued: int = 0
    requested: int = 0
    batch: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    item_ids: list[int] = Field(default_factory=list)

    @property
    def batch_id(self) -> str:
        return str(self.batch.get("batch_id", ""))

    @property
    def item_ids_ascending(self) -> list[int]:
        return sorted(self.item_ids)


class RetryItemsResult(ServerModel):
    """``retry_items_by_id``: the ORIGINAL ids retried (new items get new ids)."""

    queue_id: str = "default"
    retried_item_ids: list[int] = Field(default_factory=list)


class InvocationCacheStatus(ServerModel):
    """The server's invocation (node output) cache: size, hits, misses, on/off."""

    size: int = 0
    hits: int = 0
    misses: int = 0
    enabled: bool = False
    max_size: int = 0
