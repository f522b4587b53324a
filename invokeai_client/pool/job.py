"""A pool job: variations fed to the servers as they drain, one result each, failover.

The shell around :func:`~invokeai_client.pool.scheduler.plan`: a dispatcher task asks the
scheduler what to send whenever something changed, sends each server its share as ONE
enqueue (a chunk of variations, see :mod:`~invokeai_client.pool.variations`), and a
watcher per chunk turns the items' results into the variations' results. A server that
stops answering is given up on; its unfinished variations go back to the front of the line
(see :mod:`~invokeai_client.pool._failover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from ..runs import FieldValues, WorkflowResult
from ._bodies import NOT_ANSWERING, temporary
from ._health import Health
from ._member import Member, Sent
from .results import Attempt, PoolResult, Progress, ServerProgress
from .scheduler import Policy, plan
from .variations import VariationSet, chunk_body

if TYPE_CHECKING:
    from ._bodies import Recipe
    from .lock import JobLock
    from .manifest import Manifest

log = logging.getLogger("invokeai_client.pool")

__all__ = ["PoolJob"]

RESEND = frozenset({"lost", "detached"})
"""Item outcomes that are no result: the variation is sent again."""


class PoolJob:
    """The variations of one sweep on their way through a pool's servers.

    ``async for r in job.as_completed()`` yields one :class:`PoolResult` per variation as it
    ends; ``await job`` gives them all in sweep order; :meth:`progress` is readable at any
    time; :meth:`cancel` cancels what is queued or running on every server.
    """

    def __init__(
        self,
        members: Sequence[Member],
        bodies: Mapping[str, Mapping[str, Any]],
        variations: VariationSet,
        *,
        policy: Policy,
        manifest: Manifest | None = None,
        save_to: str | None = None,
        done: Mapping[int, PoolResult] | None = None,
        skip: frozenset[int] | set[int] = frozenset(),
        lock: JobLock | None = None,
        uploads: Mapping[str, Mapping[str, str]] | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        self.members = list(members)
        self.recipe = recipe
        """Compiles the body of a server that joins later (see :meth:`try_join`)."""
        self.bodies = dict(bodies)
        self.variations = variations
        self.policy = policy
        self.manifest = manifest
        self.lock = lock
        """The job's lock (held while it runs; released when it completes or closes)."""
        self.uploads = dict(uploads or {})
        """Per server: local image token -> that server's image name."""
        self.save_to = save_to
        self.total = len(variations)
        self.results: dict[int, PoolResult] = dict(done or {})
        self.attempts: dict[int, list[Attempt]] = {}
        self.duplicates: list[dict[str, Any]] = []
        self.late_results = 0
        self.requests = 0
        """Enqueue requests sent so far (each carries one chunk of variations)."""
        self.health = Health()
        """Which servers fail what the others complete (see :mod:`._health`)."""
        self._last_error: dict[str, str | None] = {}
        self._joining: set[str] = set()  # servers whose body is being compiled
        self.excluded: dict[str, str] = {}
        """Servers left out of this job and why: for good (a model or the board missing,
        failing what others complete) or, while the reason starts with "not answering",
        until the server answers again (it then joins the job)."""
        self._pending: deque[int] = deque(
            v.index for v in variations.variations
            if v.index not in self.results and v.index not in skip
        )
        self._order: list[int] = list(self.results)
        self._on: dict[str, dict[int, Sent]] = {m.url: {} for m in self.members}
        """Per server: the variations sent there that have not ended, by index."""
        self._watchers: dict[str, set[asyncio.Task[Any]]] = {}
        for member in self.members:
            member.jobs.add(self)
        self._change, self._wake, self._finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # stops the writers of an ended job
        self.error: BaseException | None = None
        if len(self.results) == self.total:
            self._finished.set()
            self._release()

    def __repr__(self) -> str:
        return f"<PoolJob {len(self.results)}/{self.total} done over {len(self.members)} servers>"

    # -- public ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def progress(self) -> Progress:
        """Counts per status and per server, duplicates found, and an ETA."""
        counts: dict[str, int] = {"pending": len(self._pending)}
        counts["sent"] = sum(len(self._on[m.url]) for m in self.members)
        for result in self.results.values():
            counts[result.status] = counts.get(result.status, 0) + 1
        servers = tuple(
            ServerProgress(
                m.url, m.state, len(self._on[m.url]), m.completed, m.failed, m.rate,
                m.queue_pending, m.why if m.state != "up" else None,
            )
            for m in self.members
        )
        rate = sum(m.rate or 0.0 for m in self.members if m.state == "up")
        left = self.total - len(self.results)
        eta = left / rate if rate > 0 else None
        return Progress(self.total, counts, servers, len(self.duplicates), eta)

    def per_server(self) -> dict[str, int]:
        """How many variations each server delivered."""
        split = {m.url: 0 for m in self.members}
        for result in self.results.values():
            split[result.server] = split.get(result.server, 0) + 1
        return split

    async def as_completed(self) -> AsyncIterator[PoolResult]:
        """Each variation's one result as it ends (results known before are yielded first)."""
        seen = 0
        while True:
            while seen < len(self._order):
                yield self.results[self._order[seen]]
                seen += 1
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            self._change.clear()
            await self._change.wait()

    def placement(self, index: int) -> tuple[str, Any] | None:
        """``(server, run)`` of the item carrying variation ``index`` now (None while it
        waits in line, is being enqueued, or has ended)."""
        for url, on in self._on.items():
            sent = on.get(index)
            if sent is not None and sent.run is not None:
                return url, sent.run
        return None

    async def changed(self) -> None:
        """Wait until something changed: a result, a variation placed or sent back, the end."""
        self._change.clear()
        await self._change.wait()

    async def settled(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._finished.wait(), timeout)
        return self.done

    async def wait(self) -> list[PoolResult]:
        """Every result, in sweep order, once all variations ended."""
        await self._finished.wait()
        if self.error is not None:
            raise self.error
        return [self.results[v.index] for v in self.variations.variations]

    def __await__(self) -> Generator[Any, None, list[PoolResult]]:
        return self.wait().__await__()

    async def cancel(self) -> int:
        """Stop sending and cancel this job's items on every server that answers; returns
        how many items the servers canceled. Waiting on the job then raises
        :class:`~invokeai_client.errors.InvokeAIError`; ``job.results`` keeps what ended."""
        if self.error is None and not self.done:
            self.error = errors.InvokeAIError(
                f"the pool job was canceled with {len(self.results)} of {self.total} "
                "variations ended (their results are in job.results)"
            )
        self._stop()
        canceled = 0
        for member in self.members:
            ids = {sent.batch_id for sent in self._on[member.url].values()} | member.abandoned
            if ids and member.state == "up":
                try:
                    canceled += await member.client.queue.cancel_batch(sorted(ids))
                except errors.InvokeAIError as exc:
                    log.warning("%s: could not cancel the job's items: %s", member.url, exc)
        return canceled

    # -- dispatch -------------------------------------------------------------------------

    def start(self) -> None:
        """Start feeding the servers (the pool calls this)."""
        if self._dispatcher is None and not self.done:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    def wake(self) -> None:
        """Something changed (an item ended, a server came or went): plan again."""
        self._wake.set()

    def try_join(self, member: Member) -> None:
        """``member`` answers: if it was left out of the job because it did not answer,
        compile its body (its models, board and uploads) in the background and let the
        scheduler feed it; a reason that is not "not answering" keeps it out for good."""
        url = member.url
        if (self.done or self.recipe is None or url in self.bodies or url in self._joining
                or not temporary(self.excluded.get(url, ""))):
            return
        self._joining.add(url)
        self._spawn(self._join(member, self.recipe))

    async def _join(self, member: Member, recipe: Recipe) -> None:
        url = member.url
        try:
            try:
                body, names = await recipe.body_for(member)
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                self.excluded[url] = f"{NOT_ANSWERING}: {exc}"  # tried again when it answers
                return
            except errors.InvokeAIError as exc:  # models, board, workflow: never here
                self.excluded[url] = str(exc)
                log.warning("%s cannot join the job: %s", url, exc)
                return
            if self.manifest is not None and not self.done:
                await self.manifest.joined(url, body, names)  # a resume sends it the same
            if self.done or member.state != "up":
                return
            self.bodies[url] = body
            if names:
                self.uploads[url] = names
            if url not in self._on:
                self.members.append(member)
                self._on[url] = {}
            member.jobs.add(self)
            self.excluded.pop(url, None)
            log.warning("%s joined the job", url)
            self.wake()
        finally:
            self._joining.discard(url)

    async def _dispatch(self) -> None:
        try:
            while not self.done:
                self._wake.clear()
                self._send_planned()
                await self._wake.wait()
        except Exception as exc:  # a bug must end the job visibly, not hang it
            log.exception("pool dispatcher failed")
            self.error = exc
            self._finish()

    def _send_planned(self) -> None:
        usable = [m for m in self.members if m.url in self.bodies]
        views = [m.view(True) for m in usable]
        decision = plan(views, len(self._pending), self.policy)
        by_url = {m.url: m for m in usable}
        for url, n in decision.items():
            others_up = any(m.state == "up" and m.url != url for m in usable)
            chunk = self._take(n, url, avoid_failed=others_up)
            if chunk:
                self._spawn(self._send(by_url[url], chunk))

    def _take(self, n: int, url: str, *, avoid_failed: bool) -> list[int]:
        """Up to ``n`` variations from the front of the line for ``url``; with
        ``avoid_failed``, none that already failed there (another server tries it)."""
        chunk: list[int] = []
        skipped: list[int] = []
        while self._pending and len(chunk) < n:
            index = self._pending.popleft()
            if avoid_failed and any(a.server == url and a.last_status == "failed"
                                    for a in self.attempts.get(index, ())):
                skipped.append(index)
            else:
                chunk.append(index)
        self._pending.extendleft(reversed(skipped))
        return chunk

    def _spawn(self, coro: Any, member: Member | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=coro.__name__)
        self._tasks.add(task)
        task.add_done_callback(self._task_ended)
        if member is not None:
            watchers = self._watchers.setdefault(member.url, set())
            watchers.add(task)
            task.add_done_callback(watchers.discard)

    def _task_ended(self, task: asyncio.Task[Any]) -> None:
        """A sender or watcher that failed (disk full while saving, a bug) ends the job
        with its error: nobody awaits these tasks, so a swallowed error would hang it."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None or self.done:
            return
        log.error("pool job stopped: %s", exc, exc_info=exc)
        self.error = exc
        self._finish()

    async def _send(self, member: Member, chunk: list[int]) -> None:
        batch_id = str(uuid.uuid4())
        for index in chunk:
            self._on[member.url][index] = Sent(batch_id)
        member.sending += len(chunk)
        try:  # `sending` is given back however this ends (a cancel during the manifest write)
            if self.manifest is not None:
                await self.manifest.sent(chunk, member.url, batch_id)
            base = self.bodies.get(member.url)
            if base is None or self.done:
                return  # left out or ended meanwhile: these variations were dealt with
            self.requests += 1
            variations = [self.variations.variations[i] for i in chunk]
            body = chunk_body(base, self.variations.fields, variations, batch_id,
                              self.uploads.get(member.url))
            batch = await member.client.runs.enqueue(
                body, detach=True, partial=True, names=self.variations.names or None
            )
        except errors.InvokeAIError as exc:
            self._enqueue_failed(member, chunk, batch_id, exc)
            return
        finally:
            member.sending -= len(chunk)
        runs = batch.runs
        if self.done or member.url not in self.bodies:
            # Canceled, or the server was left out (its variations went back to the line),
            # while this chunk was on its way: it must not run there.
            await batch.cancel()
            return
        if member.state != "up":  # given up on while enqueueing: failover owns these
            member.abandoned.add(batch_id)
            return
        if len(runs) < len(chunk):
            self._learn_cut(member, len(chunk), len(runs))
        self._back(member, chunk[len(runs):], cut=True)
        for index, run in zip(chunk, runs, strict=False):
            self._on[member.url][index] = Sent(batch_id, run.item_id, run)
        self._change.set()  # placed: run readers follow them
        if self.manifest is not None:
            await self.manifest.item_ids(zip(chunk, (run.item_id for run in runs), strict=False))
        by_item = {run.item_id: index for index, run in zip(chunk, runs, strict=False)}
        self._spawn(self._watch(member, batch, by_item), member)

    def _enqueue_failed(
        self, member: Member, chunk: list[int], batch_id: str, exc: errors.InvokeAIError
    ) -> None:
        log.info("%s: enqueue of %d variations failed: %s", member.url, len(chunk), exc)
        if isinstance(exc, (errors.ValidationError, errors.UnprocessableEntityError)):
            self.error = exc  # the workflow itself is refused: no server will take it
            self._finish()
            return
        full = isinstance(exc, errors.QueueFullError)  # nothing of it runs there
        if isinstance(exc, errors.QueueFullError):
            self._learn_cut(member, len(chunk), exc.room or 0)
        else:
            member.abandoned.add(batch_id)  # fate unknown: cancel it if the server answers
        if member.state == "up":
            self._back(member, chunk, cut=full)

    def _learn_cut(self, member: Member, sent: int, made: int) -> None:
        """The server's queue cut a chunk of ``sent`` to ``made`` items: it was full, so
        its limit is at least our items waiting there (all but one running) plus ``made``."""
        waiting = max(len(self._on[member.url]) - sent - 1, 0)
        member.cut_room = max(member.cut_room or 0, waiting + made)

    def _back(self, member: Member, indexes: Sequence[int], *, cut: bool) -> None:
        """Variations that did not (or will not) run on ``member`` go to the front again."""
        for index in reversed(indexes):
            self._on[member.url].pop(index, None)
            self._pending.appendleft(index)
        if indexes and cut:
            member.room_hint = 0  # the server's queue is full: wait for the next probe
        if indexes and self.manifest is not None:
            self._spawn(self.manifest.back(list(indexes), self.attempts))
        self._change.set()
        self.wake()

    async def _watch(self, member: Member, batch: Any, by_item: dict[int, int]) -> None:
        async for result in batch.as_completed():
            index = by_item[result.item_id]
            sent = self._on[member.url].get(index)
            if sent is None or sent.item_id != result.item_id:
                self.late_results += 1  # given up on earlier; failover counts it
                continue
            del self._on[member.url][index]
            member.completions.append(time.monotonic())
            attempts = self.attempts.get(index, ())
            if result.status == "failed":
                self._last_error[member.url] = result.error_message or result.error_type
            usable = [m.url for m in self.members if m.url in self.bodies and m.state == "up"]
            if result.status in RESEND or (result.status == "failed" and self.health.failed(
                member.url, attempts, usable
            )):  # lost, or failed here while other servers complete: send it again
                self._attempt(index, member, sent, result.status)
                self._back(member, [index], cut=False)
            else:
                bad = self.health.completed(member.url, attempts) if result.ok else None
                await self._deliver(index, member, result)
                if bad is not None:
                    self._leave_out(bad)
            self.wake()
            if member.url not in self.bodies:
                return  # left out of the job: what it still runs is canceled

    def _leave_out(self, url: str) -> None:
        """Server ``url`` fails what the others complete: no more work for it in this job;
        its unfinished items there are canceled and their variations sent elsewhere."""
        member = next(m for m in self.members if m.url == url)
        if self.bodies.pop(url, None) is None:
            return
        self.excluded[url] = (
            f"left out: items that failed there completed on other servers (last error: "
            f"{self._last_error.get(url) or 'unknown'})"
        )
        log.warning("%s: %s", url, self.excluded[url])
        for task in list(self._watchers.get(url, ())):
            if task is not asyncio.current_task():
                task.cancel()
        unfinished = self._on[url]
        batch_ids = sorted({sent.batch_id for sent in unfinished.values()})
        for index, sent in list(unfinished.items()):
            self._attempt(index, member, sent, getattr(sent.run, "status", None) or "unknown")
        self._back(member, list(unfinished), cut=False)
        if batch_ids:
            self._spawn(_cancel_quietly(member, batch_ids))

    def _attempt(self, index: int, member: Member, sent: Sent, status: str) -> None:
        self.attempts.setdefault(index, []).append(
            Attempt(member.url, sent.item_id, sent.batch_id, status)
        )

    async def _deliver(self, index: int, member: Member, result: WorkflowResult) -> None:
        if index in self.results:
            self.late_results += 1
            return
        if result.ok:
            member.completed += 1
        else:
            member.failed += 1
        result = _named(result, self.variations.names)
        saved: tuple[str, ...] = ()
        if self.save_to is not None and result.ok and result.images:
            saved = await _save_images(result, self.save_to, index)
        pool_result = PoolResult(
            index,
            self.variations.inputs(index),
            member.url,
            result,
            tuple(self.attempts.get(index, ())),
            saved,
        )
        self.results[index] = pool_result
        self._order.append(index)
        if self.manifest is not None:
            await self.manifest.finished(pool_result)
        self._change.set()
        if len(self.results) == self.total:
            self._finish()

    # -- failover hooks (see _failover) ----------------------------------------------------

    def give_up_on(self, member: Member) -> None:
        """``member`` stopped answering: its unfinished variations go back to the line."""
        if member.url not in self._on:
            return  # not a server of this job
        for task in list(self._watchers.get(member.url, ())):
            task.cancel()
        for index, sent in list(self._on[member.url].items()):
            status = getattr(sent.run, "status", None) or "unknown"
            self._attempt(index, member, sent, status)
            member.abandoned.add(sent.batch_id)
            member.given_up.append((self, index, sent.item_id))
        self._back(member, list(self._on[member.url]), cut=False)

    def sent_to(self, member: Member) -> dict[int, Sent]:
        """The variations of this job on ``member`` that have not ended."""
        return self._on[member.url]

    def adopt(self, member: Member, index: int, sent: Sent, batch: Any) -> None:
        """Follow an item that already exists on ``member`` (a resumed job)."""
        self._on[member.url][index] = sent
        self._change.set()
        self._spawn(self._watch(member, batch, {sent.item_id or 0: index}), member)

    def resend(self, index: int, attempt: Attempt | None, member: Member | None) -> None:
        """Send a variation again (a resumed job lost its item); ``attempt`` is recorded
        and its batch canceled on ``member`` once that server answers."""
        if attempt is not None:
            self.attempts.setdefault(index, []).append(attempt)
            if member is not None:
                member.abandoned.add(attempt.batch_id)
                member.given_up.append((self, index, attempt.item_id))
        self._pending.appendleft(index)
        if self.manifest is not None:
            self._spawn(self.manifest.back([index], self.attempts))

    def _finish(self) -> None:
        for member in self.members:
            member.jobs.discard(self)
        self._finished.set()
        self._change.set()
        self._wake.set()
        if len(self.results) == self.total:  # every result recorded: nothing left to write
            self._release()
        elif self._closing is None:  # an error or a cancel: stop the writers, then close
            self._closing = asyncio.get_running_loop().create_task(self._wind_down())

    async def _wind_down(self) -> None:
        """The job ended before every result: stop its senders and watchers (what still runs
        on the servers is left there; the manifest lists it as sent, for a resume), then
        close the manifest and release the lock, without waiting for the pool to close."""
        # A sender mid-enqueue ends first: cancelled there, its items could reach the server
        # after job.cancel() and stay pending; let alone, it cancels them once it sees the end.
        here = asyncio.current_task()
        await asyncio.gather(*(t for t in self._tasks if t.get_name() == "_send" and t is not here),
                             return_exceptions=True)
        tasks = [t for t in (*self._tasks, self._dispatcher) if t is not None and not t.done()]
        for task in tasks:
            if task is not here:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._release()

    def _release(self) -> None:
        """Nothing is left to write: close the manifest, then release the job's lock."""
        if self.manifest is not None:
            self.manifest.close_now()
        if self.lock is not None:
            self.lock.release()

    def _stop(self) -> None:
        self._pending.clear()
        self._finish()

    async def aclose(self) -> None:
        """Stop the dispatcher and every watcher (server items are left as they are)."""
        self._stop()
        tasks = [t for t in (*self._tasks, self._dispatcher) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._closing is not None:
            await asyncio.gather(self._closing, return_exceptions=True)
        self._release()


async def _cancel_quietly(member: Member, batch_ids: list[str]) -> None:
    try:
        await member.client.queue.cancel_batch(batch_ids)
    except errors.InvokeAIError as exc:
        log.warning("%s: could not cancel the job's items there: %s", member.url, exc)


def _named(result: WorkflowResult, names: Mapping[str, str]) -> WorkflowResult:
    """``result`` with its values named as the sweep named them (an item followed after a
    resume was enqueued by another process: its values come keyed ``node_id.field_name``)."""
    if not names:
        return result
    values = result.field_values
    full = values.by_node() if isinstance(values, FieldValues) else dict(values)
    return dataclasses.replace(result, field_values=FieldValues(full, names))


async def _save_images(result: WorkflowResult, folder: str, index: int) -> tuple[str, ...]:
    paths = []
    for position, image in enumerate(result.images):
        suffix = f"-{position}" if len(result.images) > 1 else ""
        # The name is the job's own (its variation index): a file there was saved by this
        # job before a crash cut it off from the manifest, so it is replaced, not refused.
        path = await image.save(folder, name=f"{index:06d}{suffix}.png", overwrite=True)
        paths.append(str(path))
    return tuple(paths)
