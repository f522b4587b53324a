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
    ConflictError,
    ConnectionError,
    EndpointNotAvailableError,
    InternalServerError,
    InvokeAIError,
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
from .fields import InvocationSchemas, IvkField, register_field
from .models.app import ServerInfo, User
from .workflows import (
    IvkWorkflowInput,
    ModelSyncReport,
    WorkflowDefinition,
    WorkflowHandle,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BoardError",
    "ConflictError",
    "ConnectionError",
    "EndpointNotAvailableError",
    "InternalServerError",
    "InvocationSchemas",
    "InvokeAIError",
    "IvkField",
    "IvkWorkflowInput",
    "ModelNotFoundError",
    "ModelSyncReport",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunCanceledError",
    "RunError",
    "RunFailedError",
    "ServerInfo",
    "TimeoutError",
    "UnprocessableEntityError",
    "User",
    "ValidationError",
    "WorkflowDefinition",
    "WorkflowError",
    "WorkflowHandle",
    "__version__",
    "register_field",
]
