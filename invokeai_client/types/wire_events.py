"""Typed Socket.IO events of the InvokeAI server (6.x names, 5.x+ field names).

Every event is a :class:`ServerEvent` subclass whose ``event`` class variable is its wire name.
Fields beyond the identity ones are optional with defaults, and unknown fields are kept, so a
newer or older server never breaks parsing; an event with no known model is an
:class:`UnknownEvent`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from ._base import REDACTED as REDACTED  # the router reads it here
from ._base import ServerModel, is_redacted

log = logging.getLogger("invokeai_client")

__all__ = [
    "BatchEnqueuedEvent",
    "BulkDownloadCompleteEvent",
    "BulkDownloadErrorEvent",
    "BulkDownloadStartedEvent",
    "DownloadCancelledEvent",
    "DownloadCompleteEvent",
    "DownloadErrorEvent",
    "DownloadProgressEvent",
    "DownloadStartedEvent",
    "InvocationCompleteEvent",
    "InvocationErrorEvent",
    "InvocationEvent",
    "InvocationProgressEvent",
    "InvocationStartedEvent",
    "LlmTaskCompleteEvent",
    "LlmTaskErrorEvent",
    "LlmTaskProgressEvent",
    "ModelInstallCancelledEvent",
    "ModelInstallCompleteEvent",
    "ModelInstallDownloadProgressEvent",
    "ModelInstallDownloadsCompleteEvent",
    "ModelInstallErrorEvent",
    "ModelInstallEvent",
    "ModelInstallStartedEvent",
    "ModelLoadCompleteEvent",
    "ModelLoadStartedEvent",
    "ProgressImage",
    "QueueClearedEvent",
    "QueueItemEvent",
    "QueueItemStatusChangedEvent",
    "QueueItemsCanceledEvent",
    "QueueItemsRetriedEvent",
    "RecallParametersUpdatedEvent",
    "ServerEvent",
    "UnknownEvent",
    "WorkflowAccessRevokedEvent",
    "WorkflowCreatedEvent",
    "WorkflowDeletedEvent",
    "WorkflowUpdatedEvent",
    "parse_event",
]

EVENT_TYPES: dict[str, type[ServerEvent]] = {}
"""Wire name -> model: every :class:`ServerEvent` subclass that names its ``event``."""


class ServerEvent(ServerModel):
    """An event pushed by the server over Socket.IO (subclasses naming their ``event`` are
    what :func:`parse_event` parses)."""

    event: ClassVar[str] = ""
    timestamp: int | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event" in cls.__dict__:
            EVENT_TYPES[cls.event] = cls


class UnknownEvent(ServerEvent):
    """An event this SDK has no model for; ``name`` and ``data`` hold it as sent."""

    name: str
    data: Any = None


# -- queue events ----------------------------------------------------------------------


class QueueEvent(ServerEvent):
    queue_id: str = "default"


class QueueItemEvent(QueueEvent):
    """An event about one queue item (``item_id``) of one enqueue call (``batch_id``)."""

    item_id: int
    batch_id: str
    origin: str | None = None
    destination: str | None = None
    user_id: str | None = "system"

    @property
    def is_redacted(self) -> bool:
        """A sanitized copy sent to other users in multi-user mode: not for tracking."""
        return is_redacted(self.batch_id, self.user_id)


class InvocationEvent(QueueItemEvent):
    """An event about one node execution; ``node_id`` is the graph node id you sent."""

    session_id: str | None = None
    invocation: dict[str, Any] = Field(default_factory=dict)
    invocation_source_id: str

    @property
    def node_id(self) -> str:
        return self.invocation_source_id

    @property
    def prepared_id(self) -> str | None:
        """The id of this execution of the node (one per iteration under ``iterate``)."""
        value = self.invocation.get("id")
        return str(value) if value is not None else None

    @property
    def node_type(self) -> str | None:
        value = self.invocation.get("type")
        return str(value) if value is not None else None


class InvocationStartedEvent(InvocationEvent):
    """A node began to execute."""

    event: ClassVar[str] = "invocation_started"


class ProgressImage(ServerModel):
    """A preview image sent with progress: ``data_url`` is a base64 JPEG data URL."""

    width: int
    height: int
    data_url: str = Field(alias="dataURL")


class InvocationProgressEvent(InvocationEvent):
    """A node reported progress; ``percentage`` is 0..1 or None, ``image`` a preview."""

    event: ClassVar[str] = "invocation_progress"
    message: str = ""
    percentage: float | None = None
    image: ProgressImage | None = None
    device: str | None = None


class InvocationCompleteEvent(InvocationEvent):
    """A node finished; ``result`` is its output as the server sent it."""

    event: ClassVar[str] = "invocation_complete"
    result: dict[str, Any] = Field(default_factory=dict)


class InvocationErrorEvent(InvocationEvent):
    """A node raised; the item's failed status event comes just before this one."""

    event: ClassVar[str] = "invocation_error"
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None


class QueueItemStatusChangedEvent(QueueItemEvent):
    """A queue item changed status (``in_progress``, ``completed``, ``failed``, ...)."""

    event: ClassVar[str] = "queue_item_status_changed"
    status: str
    status_sequence: int | None = None
    session_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    batch_status: dict[str, Any] | None = None
    queue_status: dict[str, Any] | None = None


class BatchEnqueuedEvent(QueueEvent):
    """A batch was enqueued; ``enqueued`` items were created of ``requested``."""

    event: ClassVar[str] = "batch_enqueued"
    batch_id: str
    enqueued: int = 0
    requested: int = 0
    priority: int = 0
    origin: str | None = None
    user_id: str | None = "system"

    @property
    def is_redacted(self) -> bool:
        """A sanitized copy sent to other users in multi-user mode: not for tracking."""
        return is_redacted(self.batch_id, self.user_id)


class QueueItemsCanceledEvent(QueueEvent):
    """Pending items were canceled in bulk (6.14+)."""

    event: ClassVar[str] = "queue_items_canceled"
    canceled_item_ids: list[int] = Field(default_factory=list)
    user_ids: list[str] = Field(default_factory=list)
    canceled_item_ids_by_user: dict[str, list[int]] = Field(default_factory=dict)


class QueueItemsRetriedEvent(QueueEvent):
    """Items were retried; ``retried_item_ids`` are the ORIGINAL ids, new items follow."""

    event: ClassVar[str] = "queue_items_retried"
    retried_item_ids: list[int] = Field(default_factory=list)
    user_ids: list[str] = Field(default_factory=list)
    retried_item_ids_by_user: dict[str, list[int]] = Field(default_factory=dict)


class QueueClearedEvent(QueueEvent):
    """The queue was cleared (``user_id`` None: everyone's items)."""

    event: ClassVar[str] = "queue_cleared"
    user_id: str | None = None


class RecallParametersUpdatedEvent(QueueEvent):
    event: ClassVar[str] = "recall_parameters_updated"
    user_id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


# -- model and download events ---------------------------------------------------------


class ModelLoadStartedEvent(ServerEvent):
    event: ClassVar[str] = "model_load_started"
    config: dict[str, Any] = Field(default_factory=dict)
    submodel_type: str | None = None
    user_id: str | None = None


class ModelLoadCompleteEvent(ModelLoadStartedEvent):
    event: ClassVar[str] = "model_load_complete"


class DownloadEvent(ServerEvent):
    source: str = ""


class DownloadStartedEvent(DownloadEvent):
    event: ClassVar[str] = "download_started"
    download_path: str | None = None


class DownloadProgressEvent(DownloadEvent):
    event: ClassVar[str] = "download_progress"
    download_path: str | None = None
    current_bytes: int = 0
    total_bytes: int = 0


class DownloadCompleteEvent(DownloadEvent):
    event: ClassVar[str] = "download_complete"
    download_path: str | None = None
    total_bytes: int | None = None


class DownloadCancelledEvent(DownloadEvent):
    event: ClassVar[str] = "download_cancelled"


class DownloadErrorEvent(DownloadEvent):
    event: ClassVar[str] = "download_error"
    error_type: str | None = None
    error: str | None = None


class ModelInstallEvent(ServerEvent):
    """An event of a model install job ``id``; ``source`` describes what is installed."""

    id: int
    source: Any = None


class ModelInstallDownloadProgressEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_download_progress"
    local_path: str | None = None
    bytes: int = 0
    total_bytes: int = 0
    parts: list[dict[str, Any]] = Field(default_factory=list)


class ModelInstallDownloadsCompleteEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_downloads_complete"


class ModelInstallStartedEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_started"


class ModelInstallCompleteEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_complete"
    key: str | None = None
    total_bytes: int | None = None
    config: dict[str, Any] | None = None


class ModelInstallCancelledEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_cancelled"


class ModelInstallErrorEvent(ModelInstallEvent):
    event: ClassVar[str] = "model_install_error"
    error_type: str | None = None
    error: str | None = None


# -- other events ----------------------------------------------------------------------


class BulkDownloadEvent(ServerEvent):
    bulk_download_id: str = "default"
    bulk_download_item_id: str | None = None
    bulk_download_item_name: str | None = None
    user_id: str | None = None


class BulkDownloadStartedEvent(BulkDownloadEvent):
    event: ClassVar[str] = "bulk_download_started"


class BulkDownloadCompleteEvent(BulkDownloadEvent):
    event: ClassVar[str] = "bulk_download_complete"


class BulkDownloadErrorEvent(BulkDownloadEvent):
    event: ClassVar[str] = "bulk_download_error"
    error: str | None = None


class WorkflowEvent(ServerEvent):
    workflow_id: str
    user_id: str | None = None


class WorkflowCreatedEvent(WorkflowEvent):
    event: ClassVar[str] = "workflow_created"
    is_public: bool | None = None


class WorkflowUpdatedEvent(WorkflowEvent):
    event: ClassVar[str] = "workflow_updated"
    old_is_public: bool | None = None
    new_is_public: bool | None = None


class WorkflowDeletedEvent(WorkflowEvent):
    event: ClassVar[str] = "workflow_deleted"
    is_public: bool | None = None


class WorkflowAccessRevokedEvent(WorkflowEvent):
    event: ClassVar[str] = "workflow_access_revoked"


class LlmTaskEvent(ServerEvent):
    task_id: str
    user_id: str | None = None


class LlmTaskProgressEvent(LlmTaskEvent):
    event: ClassVar[str] = "llm_task_progress"
    phase: str | None = None
    message: str | None = None
    percentage: float | None = None
    current_tokens: int | None = None
    total_tokens: int | None = None


class LlmTaskCompleteEvent(LlmTaskEvent):
    event: ClassVar[str] = "llm_task_complete"


class LlmTaskErrorEvent(LlmTaskEvent):
    event: ClassVar[str] = "llm_task_error"
    error: str | None = None


def parse_event(name: str, data: Any) -> ServerEvent:
    """Turn one Socket.IO frame into a typed event; never raises.

    A payload that does not fit its model (an older or odd server) becomes an
    :class:`UnknownEvent` so that nothing is silently lost.
    """
    cls = EVENT_TYPES.get(name)
    if cls is not None and isinstance(data, dict):
        try:
            return cls.model_validate(data)
        except PydanticValidationError as exc:
            log.debug("event %s did not fit its model: %s", name, exc)
    return UnknownEvent(name=name, data=data)
