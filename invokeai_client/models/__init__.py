"""Pydantic models of what the InvokeAI server sends (DTOs and events)."""

from ._base import ServerModel
from ._time import Timestamp, parse_timestamp
from .app import AuthStatus, ServerInfo, User
from .queue import (
    TERMINAL_STATUSES,
    BatchStatus,
    EnqueueBatchResult,
    InvocationCacheStatus,
    NodeFieldValue,
    ProcessorStatus,
    QueueAndProcessorStatus,
    QueueCounts,
    QueueCountsByDestination,
    QueueStatus,
    RetryItemsResult,
    SessionQueueItem,
    SessionQueueItemSummary,
)

__all__ = [
    "TERMINAL_STATUSES",
    "AuthStatus",
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
    "ServerInfo",
    "ServerModel",
    "SessionQueueItem",
    "SessionQueueItemSummary",
    "Timestamp",
    "User",
    "parse_timestamp",
]
