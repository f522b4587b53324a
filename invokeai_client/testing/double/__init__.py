"""The in-process InvokeAI double (:class:`InvokeAIDouble`), a package of rooms:

- ``server``: :class:`InvokeAIDouble`, which installs every area on the ``app``;
- ``app``: aiohttp + python-socketio, the HTTP fault middleware (``faults``), sockets, the
  shared stores; ``auth``: accounts and tokens; ``http``: FastAPI-shaped answers;
  ``records``: images and timestamps every area shares; ``versions``: older InvokeAIs;
  ``image_files``: upload decoding, thumbnails and zips of the image routes;
- one module per area: ``boards``, ``images``, ``models``, ``workflows``, and the ``queue``
  package (shapes, validation, plan, state, session, processor, events, routes, cache,
  faults);
- ``nodes``: the node types it runs (declarations, implementations, the table).
"""

from .app import VERSION
from .faults import FaultRule, Faults
from .queue import InvocationCache, QueueFaults, SessionQueue
from .records import DoubleImage
from .server import AREAS, InvokeAIDouble

__all__ = [
    "AREAS",
    "VERSION",
    "DoubleImage",
    "FaultRule",
    "Faults",
    "InvocationCache",
    "InvokeAIDouble",
    "QueueFaults",
    "SessionQueue",
]
