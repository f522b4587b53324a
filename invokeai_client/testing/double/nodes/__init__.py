"""The nodes the InvokeAI double can execute: model-free invocations of InvokeAI 6.14.2.

Each :class:`NodeSpec` holds what the real server declares for a node type (its input fields
with their types, defaults and constraints, its output type, its Python class name, whether
it is cached by default) and a small function that computes the same result. Images are
real PNGs made with Pillow; image nodes run in a worker thread.

Node types that InvokeAI has but the double cannot execute (model nodes and the like) are
still accepted at enqueue, as the real server does, and fail when they run.
"""

from .specs import (
    REAL_NODE_TYPES,
    FieldSpec,
    ImageRecordNotFoundException,
    MissingInputException,
    NodeContext,
    NodeInputError,
    NodeSpec,
    UnsupportedNodeError,
    kinds_compatible,
)
from .table import NODE_SPECS

__all__ = [
    "NODE_SPECS",
    "REAL_NODE_TYPES",
    "FieldSpec",
    "ImageRecordNotFoundException",
    "MissingInputException",
    "NodeContext",
    "NodeInputError",
    "NodeSpec",
    "UnsupportedNodeError",
    "kinds_compatible",
]
