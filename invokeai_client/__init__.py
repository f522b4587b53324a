"""invokeai-client: an asyncio-first SDK for the InvokeAI image-generation server.

.. code-block:: python

    from invokeai_client import AsyncClient

    async with AsyncClient("http://127.0.0.1:9090") as client:
        info = await client.server_info()
"""

from . import errors, runs
from ._config import Timeout
from ._constants import __version__
from ._files import safe_file_name
from .client import AsyncClient
from .errors import *  # noqa: F403 - every error of invokeai_client.errors (its __all__, below)
from .fields import InvocationSchemas, IvkField, register_field
from .pool import PoolJob, PoolResult, ServerPool
from .repositories.boards import BoardRepository
from .repositories.images import ImageRepository, UploadScope
from .repositories.models import ModelInstall, ModelRepository
from .repositories.queue import QueueRepository
from .runs import *  # noqa: F403 - the runs package's public names (runs.__all__, below)
from .runs.events import *  # noqa: F403 - its event classes (in runs.__all__ too)
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
    "AsyncClient",
    "BatchStatus",
    "Board",
    "BoardRef",
    "BoardRepository",
    "Client",
    "DeleteBoardResult",
    "EmbeddedWorkflow",
    "EnqueueBatchResult",
    "FoundModel",
    "ImageDTO",
    "ImageRepository",
    "ImagesResult",
    "InvocationCacheStatus",
    "InvocationSchemas",
    "IvkField",
    "IvkWorkflowInput",
    "ModelConfig",
    "ModelInstall",
    "ModelInstallJob",
    "ModelRepository",
    "ModelSyncReport",
    "PoolJob",
    "PoolResult",
    "QueueAndProcessorStatus",
    "QueueRepository",
    "ServerInfo",
    "ServerPool",
    "SessionQueueItem",
    "SessionQueueItemSummary",
    "Timeout",
    "UploadScope",
    "User",
    "WorkflowDefinition",
    "WorkflowHandle",
    "__version__",
    "register_field",
    "safe_file_name",
]
__all__ += errors.__all__
__all__ += runs.__all__
