"""invokeai-client: an asyncio-first SDK for the InvokeAI image-generation server.

.. code-block:: python

    from invokeai_client import AsyncClient

    async with AsyncClient("http://127.0.0.1:9090") as client:
        info = await client.server_info()
"""

from ._constants import __version__
from .client import AsyncClient
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BoardError,
    BoardNotFoundError,
    ConflictError,
    ConnectionError,
    EndpointNotAvailableError,
    InternalServerError,
    InvokeAIError,
    ModelInstallError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RunCanceledError,
    RunError,
    RunFailedError,
    TimeoutError,
    UnprocessableEntityError,
    ValidationError,
    WorkflowError,
)
from .models.app import ServerInfo, User
from .models.boards import UNCATEGORIZED, Board, BoardRef, DeleteBoardResult
from .models.images import EmbeddedWorkflow, ImageDTO, ImagesResult
from .models.model_configs import FoundModel, ModelConfig, ModelInstallJob
from .repositories.boards import BoardRepository
from .repositories.images import ImageRef, ImageRepository, UploadScope
from .repositories.models import ModelInstall, ModelRepository

__all__ = [
    "UNCATEGORIZED",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Board",
    "BoardError",
    "BoardNotFoundError",
    "BoardRef",
    "BoardRepository",
    "ConflictError",
    "ConnectionError",
    "DeleteBoardResult",
    "EmbeddedWorkflow",
    "EndpointNotAvailableError",
    "FoundModel",
    "ImageDTO",
    "ImageRef",
    "ImageRepository",
    "ImagesResult",
    "InternalServerError",
    "InvokeAIError",
    "ModelConfig",
    "ModelInstall",
    "ModelInstallError",
    "ModelInstallJob",
    "ModelNotFoundError",
    "ModelRepository",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunCanceledError",
    "RunError",
    "RunFailedError",
    "ServerInfo",
    "TimeoutError",
    "UnprocessableEntityError",
    "UploadScope",
    "User",
    "ValidationError",
    "WorkflowError",
    "__version__",
]
