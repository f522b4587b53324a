"""invokeai-client: an asyncio-first SDK for the InvokeAI image-generation server.

.. code-block:: python

    from invokeai_client import AsyncClient

    async with AsyncClient("http://127.0.0.1:9090") as client:
        info = await client.server_info()
"""

from ._config import Timeout
from ._constants import __version__
from ._files import safe_file_name
from .client import AsyncClient
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BoardError,
    BoardNotFoundError,
    BulkDownloadError,
    ConflictError,
    ConnectionError,
    EndpointNotAvailableError,
    FileWriteError,
    InternalServerError,
    InvokeAIError,
    JobBusyError,
    ModelChoiceError,
    ModelInstallError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    ResponseTooLargeError,
    RunCanceledError,
    RunDetachedError,
    RunError,
    RunFailedError,
    RunLostError,
    RunningLoopError,
    RunTimeoutError,
    TimeoutError,
    UnexpectedResponseError,
    UnprocessableEntityError,
    ValidationError,
    WorkflowError,
)
from .fields import InvocationSchemas, IvkField, register_field
from .pool import PoolJob, PoolResult, ServerPool
from .repositories.boards import BoardRepository
from .repositories.images import ImageRepository, UploadScope
from .repositories.models import ModelInstall, ModelRepository
from .repositories.queue import QueueRepository
from .runs import (
    BatchRun,
    FieldValues,
    ImageRef,
    ModelLoad,
    ModelLoadCompleted,
    ModelLoadStarted,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    RunEvent,
    RunManager,
    StatusChanged,
    WorkflowResult,
    WorkflowRun,
)
from .sync import Client
from .types.app import ServerInfo, User
from .types.boards import UNCATEGORIZED, Board, BoardRef, DeleteBoardResult
from .types.images import EmbeddedWorkflow, ImageDTO, ImagesResult
from .types.model_configs import FoundModel, ModelConfig, ModelInstallJob
from .types.queue import (
    BatchStatus,
    EnqueueBatchResult,
    InvocationCacheStatus,
    QueueAndProcessorStatus,
    SessionQueueItem,
    SessionQueueItemSummary,
)
from .workflows import (
    IvkWorkflowInput,
    ModelSyncReport,
    WorkflowDefinition,
    WorkflowHandle,
)

__all__ = [
    "UNCATEGORIZED",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchRun",
    "BatchStatus",
    "Board",
    "BoardError",
    "BoardNotFoundError",
    "BoardRef",
    "BoardRepository",
    "BulkDownloadError",
    "Client",
    "ConflictError",
    "ConnectionError",
    "DeleteBoardResult",
    "EmbeddedWorkflow",
    "EndpointNotAvailableError",
    "EnqueueBatchResult",
    "FieldValues",
    "FileWriteError",
    "FoundModel",
    "ImageDTO",
    "ImageRef",
    "ImageRepository",
    "ImagesResult",
    "InternalServerError",
    "InvocationCacheStatus",
    "InvocationSchemas",
    "InvokeAIError",
    "IvkField",
    "IvkWorkflowInput",
    "JobBusyError",
    "ModelChoiceError",
    "ModelConfig",
    "ModelInstall",
    "ModelInstallError",
    "ModelInstallJob",
    "ModelLoad",
    "ModelLoadCompleted",
    "ModelLoadStarted",
    "ModelNotFoundError",
    "ModelRepository",
    "ModelSyncReport",
    "NodeCompleted",
    "NodeFailed",
    "NodeProgress",
    "NodeStarted",
    "NotFoundError",
    "PermissionDeniedError",
    "PoolJob",
    "PoolResult",
    "QueueAndProcessorStatus",
    "QueueFullError",
    "QueueRepository",
    "RateLimitError",
    "ResponseTooLargeError",
    "RunCanceledError",
    "RunDetachedError",
    "RunError",
    "RunEvent",
    "RunFailedError",
    "RunLostError",
    "RunManager",
    "RunTimeoutError",
    "RunningLoopError",
    "ServerInfo",
    "ServerPool",
    "SessionQueueItem",
    "SessionQueueItemSummary",
    "StatusChanged",
    "Timeout",
    "TimeoutError",
    "UnexpectedResponseError",
    "UnprocessableEntityError",
    "UploadScope",
    "User",
    "ValidationError",
    "WorkflowDefinition",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowResult",
    "WorkflowRun",
    "__version__",
    "register_field",
    "safe_file_name",
]
