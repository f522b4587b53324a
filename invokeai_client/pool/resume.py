"""Resume a pool job from its manifest: skip what ended, follow what runs, resend what is lost.

For each variation of the manifest:

- a result is recorded (``completed``, ``failed``, ``canceled``): it is given back as is and
  never sent again;
- ``sent`` with an item id: the server is asked for the item; if it still has it the job
  follows it (a finished item gives its result at once), else the variation is sent again;
- ``sent`` without an item id (the client stopped while the enqueue was on its way): the
  server is asked for the batch by its id; its items (in chunk order) are followed, or, if
  it has none, the variation is sent again;
- ``pending``: sent as usual.

A ``sent`` variation whose server does not answer at resume time is sent elsewhere and its
batch is canceled on that server once it answers again (as in failover). Earlier attempts
the manifest lists are canceled the same way.

The job runs on every server of the pool that can run it: those it ran on get their stored
bodies (one that does not answer yet joins when it does), a server added since gets its
body compiled from the stored workflow and settings (not for a job with local images: the
manifest keeps no image bytes).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import errors
from ..runs import ImageRef, WorkflowResult
from ._bodies import stored_recipe
from ._failover import item_statuses
from ._member import Member, Sent
from .manifest import Manifest, Row
from .results import Attempt, PoolResult
from .variations import VariationSet

if TYPE_CHECKING:
    from .job import PoolJob

ENDED = frozenset({"completed", "failed", "canceled"})


async def resume_job(
    pool_members: Sequence[Member], start: Callable[..., PoolJob], path: str | Path,
    uploaded: MutableMapping[tuple[str, str], str],
) -> PoolJob:
    """The job of manifest ``path`` running again on a pool's members; ``start`` is the
    pool's job starter, ``uploaded`` its cache of image uploads (see the module doc)."""
    store = await Manifest.open(path)
    try:
        meta = await store.meta()
        variations = await store.variation_set()
        rows = await store.rows()
        members = {m.url: m for m in pool_members}
        recipe = stored_recipe(meta, variations, uploaded)
        bodies, excluded, uploads = await recipe.all(pool_members)
        done: dict[int, PoolResult] = {}
        following: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            for attempt in row.attempts:
                if attempt["server"] in members:
                    members[attempt["server"]].abandoned.add(attempt["batch_id"])
            if row.status in ENDED:
                done[row.index] = _stored(row, variations, members)
            elif row.status == "sent" and row.server is not None:
                following[row.server].append(row)
        skip = {row.index for group in following.values() for row in group}
        settings = meta["settings"]
        job = start(bodies, excluded, variations, store, settings.get("save_to"), done, skip=skip,
                    uploads=uploads, recipe=recipe)
    except BaseException:  # the job was not started: nobody else closes the file
        store.close_now()
        raise
    for url, group in following.items():
        member = members.get(url)
        await _reattach(job, member, group)
    job.wake()
    return job


def _stored(row: Row, variations: VariationSet, members: dict[str, Member]) -> PoolResult:
    member = members.get(row.server or "")
    client = member.client if member is not None else None
    inputs = variations.inputs(row.index)
    result = WorkflowResult(
        status=row.status, item_id=row.item_id or 0, batch_id=row.batch_id or "",
        field_values=inputs, images=tuple(ImageRef(name, client=client) for name in row.images),
    )
    attempts = tuple(Attempt(**a) for a in row.attempts)
    return PoolResult(row.index, inputs, row.server or "", result, attempts, row.saved)


async def _reattach(job: PoolJob, member: Member | None, rows: list[Row]) -> None:
    """Follow ``rows``' items on ``member``; what it no longer has goes back to the line."""
    lost: list[Row] = []
    if member is None or member.state != "up" or member.url not in job.bodies:
        for row in rows:
            job.resend(row.index, Attempt(row.server or "?", row.item_id, row.batch_id or "",
                                          "unknown"), member)
        return
    by_batch: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.item_id is None:
            by_batch[row.batch_id or ""].append(row)
    known = [row for row in rows if row.item_id is not None]
    for batch_id, group in by_batch.items():
        ids = await _batch_items(member, batch_id)
        group.sort(key=lambda r: r.pos or 0)
        for row, item_id in zip(group, ids, strict=False):
            known.append(_with_item(row, item_id))
        lost.extend(group[len(ids):])
    statuses = await item_statuses(member, [row.item_id for row in known if row.item_id])
    for row in known:
        if row.item_id not in statuses:
            lost.append(row)
            continue
        run = await member.client.runs.attach(row.item_id or 0, detach=True)
        job.adopt(member, row.index, Sent(row.batch_id or "", row.item_id, run), run.batch)
    for row in lost:
        job.resend(row.index, None, None)


def _with_item(row: Row, item_id: int) -> Row:
    return Row(row.index, row.values, row.status, row.server, row.batch_id, row.pos, item_id,
               row.images, row.saved, row.attempts)


async def _batch_items(member: Member, batch_id: str) -> list[int]:
    """The item ids the server made for ``batch_id`` (ascending), [] when it has none."""
    queue = member.client.queue
    try:
        status = await queue.batch_status(batch_id)
    except errors.NotFoundError:
        return []
    if status.total == 0:
        return []
    all_ids = sorted(await queue.item_ids(order="asc"))
    found = []
    for start in range(0, len(all_ids), 500):
        for summary in await queue.get_summaries(all_ids[start : start + 500]):
            if summary.batch_id == batch_id:
                found.append(summary.item_id)
        await asyncio.sleep(0)
    return sorted(found)
