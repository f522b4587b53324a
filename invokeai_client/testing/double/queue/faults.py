"""The queue's fault switches (``double.queue.faults``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class QueueFaults:
    """Switches that make the double's queue and event stream misbehave on purpose.

    Set them on ``double.queue.faults`` at any time; they apply from the next event or item::

        double.queue.faults.node_delay = 0.05          # every node takes 50 ms
        double.queue.faults.duplicate_events = True    # every event twice, like InvokeAI 6.13
        double.queue.faults.drop_sockets_after_events = 100
    """

    node_delay: float = 0.0
    """Seconds each node takes (0: instant, the default; a knob for speed benchmarks)."""
    node_delays: dict[str, float] = field(default_factory=dict)
    """Per node type delays, e.g. ``{"img_blur": 0.5}``; override :attr:`node_delay`."""
    progress_steps: int = 0
    """Progress events per node (``percentage`` 0..1), like a denoising node; the node's delay
    is spread over them and a cancel stops the node at the next step (no complete event)."""
    progress_preview: tuple[int, int] | None = None
    """With :attr:`progress_steps`: send a ``(width, height)`` JPEG preview with each step,
    as InvokeAI does while denoising (needs Pillow)."""
    duplicate_events: bool = False
    """Send every queue and invocation event twice (InvokeAI 6.13 in single-user mode)."""
    event_delay: float = 0.0
    """Deliver every event this many seconds late (order kept)."""
    shuffle_item_events: bool = False
    """Hold each item's events until it ends, then send them in a random order."""
    seed: int | None = None
    """Seed of the shuffle (None: a fresh random order)."""
    silent_events: bool = False
    """Send no events at all: clients must poll REST to learn anything."""
    drop_sockets_after_events: int | None = None
    """Cut every socket after each N events sent."""
    drop_sockets_every: float | None = None
    """Cut every socket every N seconds while set."""
    lose_enqueue_responses: int = 0
    """The next N enqueues succeed (items are queued, events sent) but the answer is lost."""
    lost_enqueue_status: int | None = 502
    """How a lost enqueue answer looks: this HTTP status, or None to cut the connection."""
    enqueue_response_delay: float = 0.0
    """Hold each enqueue answer back this long after enqueuing (events arrive first)."""
    enqueue_response_until: Callable[[], bool] | None = None
    """Hold each enqueue answer until this returns True (polled), then
    :attr:`enqueue_response_delay` more: e.g. until the items have ended, so that their
    events overtake the answer however slow the machine is."""
    stall_processor: bool = False
    """The processor stays "started" but takes no item (a stuck server)."""

