"""RunManager (``client.runs``): the public face of the runs machinery of one client.

- **Submitting.** The client picks the ``batch_id`` and registers the batch with the router
  *before* the POST, so no event is lost. ``enqueue_batch`` is never blindly retried: when
  its answer is lost the batch is looked up by its id (:mod:`~invokeai_client.runs._submit`,
  :mod:`~invokeai_client.runs._recovery`).
- **Truth from REST.** One background task per client reads the queue items of runs that
  went quiet or whose events left a question open (:mod:`~invokeai_client.runs._reconcile`).
- **Cancellation.** Cancelling a task that awaits a run cancels its server item (shielded,
  bounded in time) unless the run is detached; closing the client settles every run
  (:mod:`~invokeai_client.runs._cancel`).
- **Concurrency.** ``max_concurrency`` caps the queue items this client has in flight
  (:mod:`~invokeai_client.runs._limiter`).

Each item's state is a plain state machine (:mod:`~invokeai_client.runs._state`); the
:class:`~invokeai_client.runs.WorkflowRun` / :class:`~invokeai_client.runs.BatchRun` objects
returned here are thin views over it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from typing_extensions import Self

from .. import errors
from .._checks import check_int
from ._handles import BatchRun, WorkflowRun, batch_view, run_view
from ._hub import RunHub
from ._limiter import Limiter
from ._submit import build_body
from ._tracker import BatchTracker
from .results import ImageHost

if TYPE_CHECKING:
    from .._context import ClientContext
    from .._router import EventRouter
    from ..repositories.queue import QueueRepository
    from ..types.batch import EnqueueBody
    from ._reconcile import Reconciler

__all__ = ["RunManager"]


class _Setting:
    """A tunable of :class:`RunManager` (seconds) kept where it is used, the run hub or its
    REST reconciler: reading or assigning ``client.runs.<name>`` reads or assigns it there."""

    def __init__(self, holder: Literal["hub", "reconciler"], doc: str) -> None:
        self.holder = holder
        self.name = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _target(self, manager: RunManager) -> RunHub | Reconciler:
        hub = manager._hub
        return hub if self.holder == "hub" else hub.reconciler

    @overload
    def __get__(self, manager: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, manager: RunManager, owner: type | None = None) -> float: ...

    def __get__(self, manager: RunManager | None, owner: type | None = None) -> Self | float:
        if manager is None:
            return self
        seconds: float = getattr(self._target(manager), self.name)
        return seconds

    def __set__(self, manager: RunManager, seconds: float) -> None:
        setattr(self._target(manager), self.name, seconds)


class RunManager:
    """Runs of one client: ``client.runs``. Submit graphs or enqueue bodies, attach to items.

    ``await client.runs.submit(graph)`` enqueues one graph and returns a
    :class:`~invokeai_client.runs.WorkflowRun` once the server has it;
    ``submit_batch(graph, data=..., runs=N)`` returns a :class:`~invokeai_client.runs.BatchRun`
    for a sweep in ONE request; :meth:`enqueue` takes any ``enqueue_batch`` body (what
    ``WorkflowHandle.build_batch()`` makes). :meth:`attach` follows an item that already
    exists (e.g. enqueued by an earlier process).
    """

    def __init__(
        self,
        context: ClientContext,
        *,
        queue: QueueRepository,
        image_host: ImageHost | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise errors.ValidationError(
                f"max_concurrency must be a positive int or None, got {max_concurrency!r}",
                input="max_concurrency",
                rule="int >= 1",
            )
        limiter = Limiter(max_concurrency) if max_concurrency else None
        self._hub = RunHub(context, queue, image_host=image_host, limiter=limiter)
        self.router: EventRouter = context.router

    def __repr__(self) -> str:
        return (
            f"<RunManager of {self._hub.context.base_url!r}: {self.in_flight} runs in flight>"
        )

    # -- public --------------------------------------------------------------------------

    @property
    def max_concurrency(self) -> int | None:
        limiter = self._hub.limiter
        return limiter.limit if limiter else None

    @property
    def in_flight(self) -> int:
        """Queue items submitted by this client that have no final result yet."""
        return self._hub.in_flight

    @property
    def batches(self) -> list[BatchRun]:
        """Batches with items still in flight."""
        return [batch_view(tracker) for tracker in self._hub.batches.values()]

    quiet_after = _Setting(
        "reconciler", "Seconds without news after which a run's item is read over REST."
    )
    poll_interval = _Setting(
        "reconciler", "Seconds between REST reads of the runs in flight while there is no socket."
    )
    unreachable_after = _Setting(
        "reconciler", "Seconds of unreachable server after which runs in flight end as ``lost``."
    )
    enqueue_fate_window = _Setting(
        "hub", "Seconds an enqueue of unknown fate is looked for by batch id before it may be "
        "sent again.",
    )

    @property
    def rest_checks(self) -> int:
        """How many status reads the REST catch-up made (a debugging counter)."""
        return self._hub.reconciler.rest_checks

    async def submit(
        self,
        graph: Mapping[str, Any],
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
        workflow: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Enqueue ``graph`` once; returns its run as soon as the server has it.

        ``data`` (InvokeAI's batch data) may substitute single values; it must describe
        exactly one item (use :meth:`submit_batch` for more).
        """
        body = build_body(graph, data, 1, prepend, origin, destination, workflow, batch_id)
        return self._only_run(await self._hub.enqueue(body, detach=detach, single=True))

    async def submit_body(
        self, body: EnqueueBody | Mapping[str, Any], *, detach: bool = False
    ) -> WorkflowRun:
        """Submit an ``enqueue_batch`` body that makes exactly one queue item; its run."""
        return self._only_run(await self._hub.enqueue(body, detach=detach, single=True))

    async def submit_batch(
        self,
        graph: Mapping[str, Any],
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
        workflow: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """Enqueue ``graph`` for every combination of ``data`` (zipped within a group,
        cartesian across groups), ``runs`` times over, in ONE request."""
        body = build_body(graph, data, runs, prepend, origin, destination, workflow, batch_id)
        return await self.enqueue(body, detach=detach)

    async def enqueue(
        self,
        body: EnqueueBody | Mapping[str, Any],
        *,
        detach: bool = False,
        partial: bool = False,
        names: Mapping[str, str] | None = None,
    ) -> BatchRun:
        """Submit an ``enqueue_batch`` body: an :class:`~invokeai_client.types.batch.EnqueueBody`
        (e.g. from the workflow compile stage) or its dict form
        (``{"batch": {...}, "prepend": bool}``, parsed with the same rules).

        The batch id is the body's (or a new uuid4, written into the request). Returns
        once the server has the items; their runs are ``batch.runs``. ``names`` maps a
        batch input's ``"node_id.field_name"`` to the name its ``field_values`` use. A batch
        the server's queue cuts (``max_queue_size``) raises :class:`~errors.QueueFullError`
        after its items were canceled, unless ``partial``: then the batch holds the items
        that were made (the first ones, in order) and the caller sends the rest later.
        """
        tracker = await self._hub.enqueue(body, detach=detach, partial=partial, names=names)
        return batch_view(tracker)

    @staticmethod
    def _only_run(tracker: BatchTracker) -> WorkflowRun:
        """The run of a one-item batch."""
        return run_view(tracker, tracker.first_item())

    async def attach(self, item_id: int, *, detach: bool = True) -> WorkflowRun:
        """Follow an existing queue item (e.g. enqueued by another process).

        Attached runs are detached by default: cancelling a task that awaits one leaves the
        item alone; pass ``detach=False`` to cancel it then.
        """
        tracker, found = await self._hub.attach(item_id, detach=detach)
        return run_view(tracker, found)

    async def retry(self, run: WorkflowRun | int, *, detach: bool = False) -> WorkflowRun:
        """Run a failed or canceled queue item again and follow the new item.

        InvokeAI's retry enqueues a NEW item (same batch, graph and values) and does not
        say which; it is found as the newest retried item of that batch. ``run``
        is a :class:`WorkflowRun` or an item id. A completed (or still running) item is
        refused with :class:`~errors.ValidationError`.
        """
        self._hub.check_open()
        if isinstance(run, WorkflowRun):
            return await run.retry(detach=detach)
        item_id = check_int("run", run, minimum=1)
        tracker, found = await self._hub.retry_item(item_id, detach=detach)
        return run_view(tracker, found)

    def stats(self) -> dict[str, Any]:
        """Counters for debugging: runs in flight, REST checks, router counters."""
        hub = self._hub
        return {
            "in_flight": self.in_flight,
            "batches": len(hub.batches),
            "rest_checks": self.rest_checks,
            "background_tasks": len(hub.tasks) + len(hub.posts),
            **{f"router_{k}": v for k, v in self.router.stats().items()},
        }

    async def cancel_run(self, run: WorkflowRun) -> str:
        """Cancel one item on the server and apply what the server answers; the item's
        status afterwards."""
        return await run.cancel()

    async def cancel_batch(self, batch: BatchRun) -> int:
        """Cancel every pending or running item of ``batch``; returns the server's count."""
        return await batch.cancel()

    def reopen(self) -> None:
        """Allow runs again after the client was closed and opened again."""
        self._hub.closed = False

    async def aclose(self) -> None:
        """Settle every run: cancel the server items of runs that are not detached (in bulk,
        bounded in time), end every unfinished run locally, stop all background work."""
        await self._hub.aclose()
