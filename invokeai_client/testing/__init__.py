"""Test peers for code that uses invokeai-client: an in-process double and a real server.

- :class:`InvokeAIDouble`: a protocol-faithful fake InvokeAI in your test's event loop, with
  fault switches (dropped sockets, 5xx/429, slow answers, the HTML fallback) and a session
  queue that really runs model-free graphs (``double.queue``, its faults: :class:`QueueFaults`).
- :class:`LocalInvokeAI`: a real InvokeAI 6.14.2 started on a free loopback port.
"""

from ._double_queue import InvocationCache, QueueFaults, SessionQueue
from .double import DoubleImage, FaultRule, Faults, InvokeAIDouble
from .local import LocalInvokeAI, LocalServerError

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
