"""The pool's scheduler: a pure function from what the pool knows to what it sends now.

No I/O and no clock: the shell measures (items in flight per server, item rate, queue room)
and calls :func:`plan` whenever something changed (an item ended, a server came or went, a
probe answered). The answer is how many of the pending variations each server gets *now*.

Rules, in order:

1. A server that is down, refused the workflow (models) or is still being probed gets nothing.
2. No server ever holds more of our items than its *depth*: the running one, a *lead* long
   enough to cover the time the pool needs to notice an item ended and send more
   (``lead_time`` seconds of work at the server's measured rate, at least ``min_lead``),
   and one *refill* (``batch_time`` seconds of work, at least 1). A server is refilled
   only once it has room for a whole refill, so each request carries several variations on
   a fast server (cheaper for the client and the server) and one on a slow GPU. Queues stay
   shallow (about ``lead_time + batch_time`` seconds of work), so little is stranded on a
   server that dies.
3. No send exceeds the server's free queue room (``max_queue_size`` minus its pending items,
   whoever owns them): nothing is ever cut by the server's queue limit.
4. When there is less work left than room, work goes where it finishes first: the remaining
   variations are shared so that every server finishes at about the same time (a
   water-filling split by rate, counting other clients' items waiting there); a slow or
   crowded server gets nothing it would finish after another server could have. A single
   ``submit()`` is this case with one variation: it goes to the least loaded server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Policy", "ServerState", "depth", "plan", "refill"]


@dataclass(frozen=True)
class ServerState:
    """What the pool knows about one server at one moment.

    ``in_flight``: our items on it that have not ended (queued, running, or being enqueued).
    ``backlog``: other clients' items waiting there (work ahead of ours, not ours to count
    against the depth, but it delays what we send).
    ``rate``: measured items per second (None until its first items ended).
    ``room``: free places in its queue (``max_queue_size`` minus pending items of everyone);
    None when unknown. ``usable``: up, answering and able to run the workflow.
    """

    name: str
    usable: bool = True
    in_flight: int = 0
    backlog: int = 0
    rate: float | None = None
    room: int | None = None


@dataclass(frozen=True)
class Policy:
    """Knobs of the scheduler (the defaults suit GPUs taking 0.05 s to minutes per item).

    ``lead_time``: seconds of queued work kept on each server beyond the running item; it
    must cover the pool's reaction time (event latency + one enqueue round trip).
    ``min_lead`` / ``max_lead``: bounds of that lead in items. ``batch_time``: seconds of
    work sent per refill (one request). ``max_chunk``: the most variations in one request.
    """

    lead_time: float = 0.5
    min_lead: int = 1
    max_lead: int = 64
    batch_time: float = 1.0
    max_chunk: int = 500


def refill(state: ServerState, policy: Policy, default_rate: float) -> int:
    """How many variations one request to this server carries in the steady state."""
    rate = state.rate if state.rate is not None else default_rate
    return max(1, min(policy.max_chunk, math.ceil(rate * policy.batch_time)))


def depth(state: ServerState, policy: Policy, default_rate: float) -> int:
    """How many of our items a server may hold: the running one, the lead, one refill."""
    rate = state.rate if state.rate is not None else default_rate
    lead = math.ceil(rate * policy.lead_time) if rate > 0 else policy.min_lead
    return max(policy.min_lead, min(policy.max_lead, lead)) + refill(state, policy, default_rate)


def _default_rate(servers: Sequence[ServerState]) -> float:
    known = [s.rate for s in servers if s.usable and s.rate]
    return sum(known) / len(known) if known else 1.0


def _shares(servers: Sequence[ServerState], pending: int, rates: Mapping[str, float]) -> dict[
    str, int
]:
    """Split ``pending`` so every server ends at about the same time T: a server's share
    is the whole items it can finish by T beyond what it holds; T is the least that covers
    ``pending`` (a binary search: the filled count grows with T)."""
    lo, hi = 0.0, 1.0
    while _filled(servers, rates, hi) < pending:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if _filled(servers, rates, mid) >= pending:
            hi = mid
        else:
            lo = mid
    return {s.name: _share(rates[s.name], hi, s.in_flight + s.backlog) for s in servers}


def _share(rate: float, t: float, in_flight: int) -> int:
    return max(0, math.floor(rate * t + 1e-9) - in_flight)


def _filled(servers: Sequence[ServerState], rates: Mapping[str, float], t: float) -> int:
    return sum(_share(rates[s.name], t, s.in_flight + s.backlog) for s in servers)


def plan(servers: Sequence[ServerState], pending: int, policy: Policy = Policy()) -> dict[str, int]:
    """How many pending variations to send to each server now (servers absent get none).

    The sum never exceeds ``pending``; no server is sent more than its depth minus what it
    holds, nor more than its queue room, nor more than ``policy.max_chunk`` in one call.
    """
    usable = [s for s in servers if s.usable]
    if pending <= 0 or not usable:
        return {}
    default = _default_rate(usable)
    rates = {s.name: (s.rate if s.rate else default) for s in usable}
    caps: dict[str, int] = {}
    steady: dict[str, int] = {}
    for s in usable:
        gap = depth(s, policy, default) - s.in_flight
        cap = min(gap, policy.max_chunk) if s.room is None else min(gap, policy.max_chunk, s.room)
        if cap > 0:
            caps[s.name] = cap
            # Steady state: wait for room for a whole refill (unless the queue limit binds).
            whole = refill(s, policy, default)
            steady[s.name] = cap if cap >= whole or cap < gap else 0
    if not caps:
        return {}
    # Less work left than room: share it by finish time (the tail); else refill the gaps.
    shares = _shares(usable, pending, rates) if sum(caps.values()) >= pending else steady
    # Fastest finish first, so rounding extras land where they finish soonest.
    order = sorted(caps, key=lambda n: (_finish(usable, n, rates), n))
    sends: dict[str, int] = {}
    left = pending
    for name in order:
        count = min(caps[name], shares.get(name, 0), left)
        if count > 0:
            sends[name] = count
            left -= count
    return sends


def _finish(servers: Sequence[ServerState], name: str, rates: Mapping[str, float]) -> float:
    state = next(s for s in servers if s.name == name)
    return (state.in_flight + state.backlog + 1) / rates[name]
