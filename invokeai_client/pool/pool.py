"""ServerPool: one job over many InvokeAI servers (one GPU each), with failover."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio.to_thread

from .. import errors
from ..client import AsyncClient
from ..workflows.definition import WorkflowDefinition
from ..workflows.handle import WorkflowHandle
from ._bodies import Recipe, compile_body, sweep_groups, swept_names, temporary
from ._failover import watch_members
from ._images import tokenize
from ._member import Member
from ._pool_run import PoolRun
from .job import PoolJob
from .lock import JobLock
from .manifest import Manifest
from .results import PoolResult
from .resume import resume_job
from .scheduler import Policy
from .variations import VariationSet, expand

log = logging.getLogger("invokeai_client.pool")

__all__ = ["ServerPool"]


class ServerPool:
    """Many InvokeAI servers driven as one: ``async with ServerPool([url, ...]) as pool``.

    Holds one :class:`~invokeai_client.AsyncClient` per server (``client_options`` go to
    each). :meth:`submit_batch` spreads a sweep over the servers as they drain (a faster
    server takes more, no queue gets deep or overflows); :meth:`submit` runs one variation
    on the server with the least work ahead. A server that stops answering for
    ``down_after`` seconds is taken out and its unfinished items run elsewhere; see
    docs/pool.md for when an item may then have run twice.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        policy: Policy | None = None,
        probe_interval: float = 1.0,
        probe_timeout: float = 10.0,
        down_after: float = 15.0,
        **client_options: Any,
    ) -> None:
        if isinstance(urls, str) or not urls:
            raise errors.ValidationError(
                "ServerPool needs a list of server URLs", input="urls", rule="non-empty list"
            )
        if len(set(urls)) != len(urls):
            raise errors.ValidationError(
                "ServerPool lists a server twice", input="urls", rule="each server once"
            )
        self.policy = policy or Policy()
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.down_after = down_after
        self._client_options = client_options
        self.members = [Member(url.rstrip("/"), AsyncClient(url, **client_options)) for url in urls]
        self._retired: set[asyncio.Task[None]] = set()
        self._jobs: list[PoolJob] = []
        self._watcher: asyncio.Task[None] | None = None
        self._uploaded: dict[tuple[str, str], str] = {}
        """(server, local image token) -> the image's name there: each content is uploaded
        once per server for the pool's life."""

    def __repr__(self) -> str:
        up = sum(m.state == "up" for m in self.members)
        return f"<ServerPool {up}/{len(self.members)} servers up>"

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    def client(self, url: str) -> AsyncClient:
        """The client of one server of the pool."""
        for member in self.members:
            if member.url == url.rstrip("/"):
                return member.client
        raise errors.ValidationError(f"{url} is not in the pool", input="url", rule="pool server")

    def states(self) -> dict[str, str]:
        """Each server's state: ``up`` or ``down: <why>``."""
        return {m.url: m.state if m.why is None else f"{m.state}: {m.why}" for m in self.members}

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> ServerPool:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open every server's client; servers that do not answer are retried by the probe.
        Raises :class:`~invokeai_client.errors.ConnectionError` when none answers."""
        results = await asyncio.gather(
            *(self._open_member(m) for m in self.members), return_exceptions=True
        )
        for member, outcome in zip(self.members, results, strict=True):
            if isinstance(outcome, BaseException):
                member.state, member.why = "down", f"not answering: {outcome}"
            else:
                member.state = "up"
        if not any(m.state == "up" for m in self.members):
            await self.aclose()
            raise errors.ConnectionError(
                "no server of the pool answers: "
                + "; ".join(f"{m.url}: {m.why}" for m in self.members)
            )
        self._watcher = asyncio.get_running_loop().create_task(
            watch_members(
                self.members, interval=self.probe_interval, timeout=self.probe_timeout,
                down_after=self.down_after, on_change=self._changed,
            )
        )

    async def _open_member(self, member: Member) -> None:
        await asyncio.wait_for(member.open(), self.probe_timeout + 10)

    async def aclose(self) -> None:
        """Stop every job's dispatch, then close every client (items on servers are left)."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for job in self._jobs:
            await job.aclose()
        self._jobs.clear()
        await asyncio.gather(*self._retired, return_exceptions=True)
        for member in self.members:
            for batch in member.client.runs.batches:
                batch.detach()
            member.state = "closed"
        await asyncio.gather(*(m.client.aclose() for m in self.members), return_exceptions=True)

    def _changed(self, member: Member) -> None:
        for job in self._jobs:
            if member.state == "down":
                job.give_up_on(member)
            elif member.state == "up":
                job.try_join(member)  # left out while it did not answer: it may join now
            job.wake()
        if member.state == "down":
            self._retire(member)

    def _retire(self, member: Member) -> None:
        """A server given up on gets a fresh client (which probes it until it answers);
        the old one stops following the items left there and is closed in the background,
        so a dead server costs no REST polling or reconnects for the rest of the job."""
        old = member.client
        for batch in old.runs.batches:
            batch.detach()
        member.client = AsyncClient(member.url, **self._client_options)
        member.opened = False
        task = asyncio.get_running_loop().create_task(old.aclose())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    # -- workflows ----------------------------------------------------------------------

    async def load(
        self, source: str | Path | Mapping[str, Any] | WorkflowDefinition
    ) -> WorkflowHandle:
        """Load a workflow (path, dict or JSON text) typed by the first server that answers;
        the handle is compiled once per job and sent to every server."""
        failures = []
        for member in [m for m in self.members if m.state == "up"]:
            try:
                return await member.client.workflows.load(source)
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                failures.append(f"{member.url}: {exc}")
            except errors.InvokeAIError as exc:
                if member.state == "up":
                    raise  # the workflow itself is wrong
                failures.append(f"{member.url}: {exc}")  # given up on while loading
        raise errors.ConnectionError(
            "no server of the pool answers" + (": " + "; ".join(failures) if failures else "")
        )

    # -- jobs ---------------------------------------------------------------------------

    async def submit_batch(
        self,
        handle: WorkflowHandle,
        sweep: Mapping[Any, Iterable[Any]] | None = None,
        *,
        zip: bool | Sequence[Sequence[Any]] = False,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        board: Any = None,
        attach_workflow: bool = True,
        sync: bool = True,
        manifest: str | Path | None = None,
        save_to: str | Path | None = None,
        lock: JobLock | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> PoolJob:
        """Spread every variation of ``sweep`` (as :meth:`WorkflowHandle.submit_batch` reads
        it) over the servers; returns the running :class:`~invokeai_client.pool.PoolJob`.

        Every value is checked before anything is sent. With ``sync`` each server first
        points the workflow's model inputs at its installed models; servers missing one are
        left out (``job.excluded`` says why). ``attach_workflow=False`` leaves the workflow
        JSON off the batches (less server work per item; the gallery then cannot reopen the
        workflow from an image). ``manifest`` makes the job durable (a SQLite file: see
        :meth:`resume`) and locks it for the job's life (:class:`JobLock`: a second run of
        the same job raises :class:`~invokeai_client.errors.JobBusyError`; pass ``lock``
        when you took it yourself); ``save_to`` saves every image into that folder;
        ``arguments`` are kept in the manifest's settings (what made the job: the CLI
        checks a ``--resume`` against them).
        """
        recipe, variations = await self._prepare(handle, sweep, zip, data, runs, board,
                                                 attach_workflow, sync)
        return await self._launch(recipe, variations, manifest, save_to, lock, arguments)

    async def _prepare(
        self, handle: WorkflowHandle, sweep: Mapping[Any, Iterable[Any]] | None,
        zip: bool | Sequence[Sequence[Any]], data: Sequence[Sequence[Mapping[str, Any]]] | None,
        runs: int, board: Any, attach: bool, sync: bool,
    ) -> tuple[Recipe, VariationSet]:
        """Check everything locally (no request but reading local images): the job's
        recipe (what compiles each server's body) and its variations."""
        names = swept_names(handle, sweep, zip)
        handle, groups, images = await tokenize(handle, sweep_groups(handle, sweep, zip, data))
        base = compile_body(handle, groups, board_id=None, attach_workflow=attach)
        variations = dataclasses.replace(
            expand(base["batch"].get("data"), runs, names), given=images.given
        )
        recipe = Recipe(handle.copy(), groups, board, attach, sync, images, self._uploaded)
        return recipe, variations

    async def _launch(
        self, recipe: Recipe, variations: VariationSet, manifest: str | Path | None,
        save_to: str | Path | None, lock: JobLock | None, arguments: Mapping[str, Any] | None,
    ) -> PoolJob:
        if manifest is not None and lock is None:
            lock = await anyio.to_thread.run_sync(JobLock.acquire, manifest)
        store = None
        try:
            bodies, excluded, uploads = await recipe.all(self.members)
            if manifest is not None:
                store = await Manifest.create(
                    manifest, variations, recipe.workflow_dict(), bodies=bodies, settings={
                        "attach_workflow": recipe.attach_workflow, "sync": recipe.sync,
                        "board": recipe.board,
                        "save_to": None if save_to is None else str(save_to),
                        "uploads": uploads, "arguments": dict(arguments or {}),
                    },
                )
            return self._start(bodies, excluded, variations, store, save_to, {}, lock=lock,
                               uploads=uploads, recipe=recipe)
        except BaseException:
            if store is not None:
                store.close_now()
            if lock is not None:
                lock.release()
            raise

    def submit(
        self, handle: WorkflowHandle, *, board: Any = None, attach_workflow: bool = True,
        sync: bool = True, manifest: str | Path | None = None,
        save_to: str | Path | None = None,
    ) -> PoolRun:
        """Run the handle's current values once, on the server with the least work ahead.

        Returns a :class:`~invokeai_client.pool.PoolRun` at once: ``await`` it for the one
        :class:`PoolResult` (failed runs included: check ``result.ok``), read its
        ``events()`` from whichever server carries it, ``cancel()`` it. Values that make
        more than one item (a generator) raise ValidationError when awaited, before any
        request (use :meth:`submit_batch`)."""
        return PoolRun(self._submit_one(handle, board, attach_workflow, sync, manifest, save_to))

    async def _submit_one(
        self, handle: WorkflowHandle, board: Any, attach: bool, sync: bool,
        manifest: str | Path | None, save_to: str | Path | None,
    ) -> PoolJob:
        recipe, variations = await self._prepare(handle, None, False, None, 1, board, attach,
                                                 sync)
        if len(variations) != 1:
            raise errors.ValidationError(
                f"submit() runs one item, but this workflow makes {len(variations)}; use "
                "submit_batch()", input="data", rule="exactly one item",
            )
        return await self._launch(recipe, variations, manifest, save_to, None, None)

    async def resume(self, manifest: str | Path, *, lock: JobLock | None = None) -> PoolJob:
        """Continue a job from its manifest after the client stopped (crash, Ctrl-C, kill).

        Variations with a result are not sent again; items the servers still have are
        followed; variations whose item is gone (or was never enqueued) are sent again.
        The job is locked first (see :meth:`submit_batch`): a run still holding it makes
        this raise :class:`~invokeai_client.errors.JobBusyError` before any request.
        """
        if lock is None:
            lock = await anyio.to_thread.run_sync(JobLock.acquire, manifest)
        try:
            return await resume_job(self.members, functools.partial(self._start, lock=lock),
                                    manifest, self._uploaded)
        except BaseException:
            lock.release()
            raise

    def _start(
        self, bodies: dict[str, dict[str, Any]], excluded: dict[str, str], variations: Any,
        store: Manifest | None, save_to: str | Path | None, done: Mapping[int, PoolResult],
        *, skip: set[int] | None = None, lock: JobLock | None = None,
        uploads: Mapping[str, Mapping[str, str]] | None = None, recipe: Recipe | None = None,
    ) -> PoolJob:
        if not bodies and not any(map(temporary, excluded.values())):
            raise errors.ModelNotFoundError(
                "no server of the pool can run this workflow: "
                + "; ".join(f"{url}: {why}" for url, why in excluded.items())
            )
        job = PoolJob(
            [m for m in self.members if m.url in bodies], bodies, variations,
            policy=self.policy, manifest=store,
            save_to=None if save_to is None else str(save_to), done=done, skip=skip or set(),
            lock=lock, uploads=uploads, recipe=recipe,
        )
        job.excluded = excluded
        # Ended jobs are forgotten, except one still holding its lock (it ended with an
        # error: aclose() stops its last writers, then releases it).
        self._jobs = [j for j in self._jobs if not j.done or (j.lock and j.lock.held)] + [job]
        job.start()
        for member in self.members:  # a server that timed out while compiling: try again
            if member.state == "up":
                job.try_join(member)
        return job
