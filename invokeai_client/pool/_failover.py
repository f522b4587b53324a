"""Failover: probe every server, give up on one that stops answering, clean up when it returns.

Timeline of a server that goes away and comes back:

1. Probes (``GET queue/status`` every ``probe_interval``) fail for ``down_after`` seconds:
   the server is *down*. Each job records an :class:`~invokeai_client.pool.results.Attempt`
   for every variation it had there (with the item's last known status) and puts those
   variations back at the front of its line; the other servers take them.
2. A later probe answers: before the server gets new work, every batch the pool gave up on
   there is canceled (``cancel_by_batch_ids``), then those items are read back. One that
   ``completed`` ran twice (there and on the server that took it over); one canceled after
   it had started ran partly twice. Both are recorded in ``job.duplicates``.

So a variation can execute twice only if its item was running when the server went away
(a real InvokeAI that restarts marks it canceled, partly run) or if the server came back and
started one of its queued items before the pool's cancel arrived (a restarted InvokeAI
starts processing at once). The user still gets exactly one result per variation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import errors
from ._member import Member

log = logging.getLogger("invokeai_client.pool")

SUMMARY_CHUNK = 500


async def watch_members(
    members: Sequence[Member],
    *,
    interval: float,
    timeout: float,
    down_after: float,
    on_change: Callable[[Member], Any],
) -> None:
    """Probe every member forever; ``on_change(member)`` after it went down or came back."""
    while True:
        now = time.monotonic()
        await asyncio.gather(
            *(_guarded(m, timeout, down_after, on_change) for m in members
              if m.state != "closed" and m.needs_probe(now, interval))
        )
        await asyncio.sleep(interval)


async def _guarded(
    member: Member, timeout: float, down_after: float, on_change: Callable[[Member], Any]
) -> None:
    """One member's check; a bug in it is logged, never allowed to end the probing: every
    job waiting for queue room or a server's return is woken by these probes."""
    try:
        await _check(member, timeout, down_after, on_change)
    except Exception:
        log.exception("%s: checking the server failed", member.url)


async def _check(
    member: Member, timeout: float, down_after: float, on_change: Callable[[Member], Any]
) -> None:
    answered = await member.probe(timeout)
    now = time.monotonic()
    if member.state == "up" and not answered:
        assert member.failing_since is not None
        if now - member.failing_since >= down_after:
            member.state = "down"
            log.warning("%s is down (%s); its items go to the other servers", member.url,
                        member.why)
            on_change(member)
    elif member.state == "down" and answered:
        await cancel_abandoned(member)
        if member.failing_since is None:  # still answering after the cleanup
            member.state = "up"
            member.why = None
            log.warning("%s is back", member.url)
            on_change(member)
    elif answered:
        on_change(member)  # fresh queue counts: there may be room for more


async def cancel_abandoned(member: Member) -> None:
    """Cancel the batches given up on ``member``, then record which of their items ran."""
    if not member.abandoned:
        return
    batch_ids = sorted(member.abandoned)
    try:
        await member.client.queue.cancel_batch(batch_ids)
    except errors.InvokeAIError as exc:
        log.info("%s: could not cancel abandoned batches yet: %s", member.url, exc)
        return
    member.abandoned.difference_update(batch_ids)
    given_up, member.given_up = member.given_up, []
    ids = [item_id for _, _, item_id in given_up if item_id is not None]
    try:
        statuses = await item_statuses(member, ids)
    except errors.InvokeAIError as exc:
        log.info("%s: could not read the abandoned items: %s", member.url, exc)
        return
    for job, index, item_id in given_up:
        status, started = statuses.get(item_id, ("gone", False)) if item_id else ("?", False)
        if status == "completed" or started:
            job.duplicates.append(
                {"index": index, "server": member.url, "item_id": item_id, "status": status}
            )


async def item_statuses(member: Member, item_ids: Sequence[int]) -> dict[int, tuple[str, bool]]:
    """``{item_id: (status, started)}`` for the items the server still has."""
    found: dict[int, tuple[str, bool]] = {}
    for start in range(0, len(item_ids), SUMMARY_CHUNK):
        chunk = list(item_ids[start : start + SUMMARY_CHUNK])
        for summary in await member.client.queue.get_summaries(chunk):
            found[summary.item_id] = (summary.status, summary.started_at is not None)
    return found
