"""invokeai-client: an asyncio-first SDK for the InvokeAI image-generation server.

.. code-block:: python

    from invokeai_client import AsyncClient

    async with AsyncClient("http://127.0.0.1:9090") as client:
        info = await client.server_info()
"""

from . import runs
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
from .runs import *  # noqa: F403 - the runs package's public names (runs.__all__, below)
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
    "FileWriteError",
    "FoundModel",
    "ImageDTO",
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
    "ModelNotFoundError",
    "ModelRepository",
    "ModelSyncReport",
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
    "RunFailedError",
    "RunLostError",
    "RunTimeoutError",
    "RunningLoopError",
    "ServerInfo",
    "ServerPool",
    "SessionQueueItem",
    "SessionQueueItemSummary",
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
    "__version__",
    "register_field",
    "safe_file_name",
]
__all__ += runs.__all__
