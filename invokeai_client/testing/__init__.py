"""Test peers for code that uses invokeai-client: an in-process double and a real server.

- :class:`InvokeAIDouble`: a protocol-faithful fake InvokeAI in your test's event loop, with
  fault switches (dropped sockets, 5xx/429, slow answers, the HTML fallback) and a session
  queue that really runs model-free graphs (``double.queue``, its faults: :class:`QueueFaults`).
- :class:`LocalInvokeAI`: a real InvokeAI 6.14.2 started on a free loopback port.
"""

from typing import TYPE_CHECKING, Any

from .double import (
    DoubleImage,
    FaultRule,
    Faults,
    InvocationCache,
    InvokeAIDouble,
    QueueFaults,
    SessionQueue,
)

if TYPE_CHECKING:
    from .local import LocalInvokeAI, LocalServerError


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that ``python -m invokeai_client.testing.local`` runs that
    # module once (importing it here first makes runpy warn).
    if name in ("LocalInvokeAI", "LocalServerError"):
        from . import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DoubleImage",
    "FaultRule",
    "Faults",
    "InvocationCache",
    "InvokeAIDouble",
    "LocalInvokeAI",
    "LocalServerError",
    "QueueFaults",
    "SessionQueue",
]
