"""WorkflowRun (one queue item) and BatchRun (the items of one enqueue call).

Both are updated synchronously by the event router (no task per run): a socket event becomes
a few attribute writes and, at the end, one resolved future. REST catch-up from the
:class:`~invokeai_client.runs._manager.RunManager` feeds the same methods, so either path
produces the same :class:`~invokeai_client.runs.results.WorkflowResult`.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import errors
from .._checks import check_seconds
from .._router import ItemRoute, Mailbox
from ..types.queue import BatchStatus, EnqueueBatchResult, SessionQueueItem
from ..types.wire_events import ProgressImage
from .events import (
    ModelLoadCompleted,
    ModelLoadStarted,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    RunEvent,
    StatusChanged,
    denoise_step,
)
from .results import (
    FieldValues,
    ImageRef,
    WorkflowResult,
    collect_images,
    failed_node_from_session,
    is_new_image_source,
    map_output,
    outputs_from_session,
)

if TYPE_CHECKING:
    from ._manager import RunManager

__all__ = ["BatchRun", "WorkflowRun"]

TERMINAL = frozenset({"completed", "failed", "canceled", "lost"})

_now = time.monotonic


_MODEL_LOADS = {
    "model_load_started": ModelLoadStarted, "model_load_complete": ModelLoadCompleted,
}

_PLAIN = (int, float, str, bool, type(None))
"""Output values that cannot hold an image."""


def _is_progress(event: RunEvent) -> bool:
    return isinstance(event, NodeProgress)


def _preview(image: Any) -> ProgressImage | None:
    if not isinstance(image, dict):
        return None
    try:
        return ProgressImage.model_validate(image)
    except ValueError:
        return None


class WorkflowRun(ItemRoute):
    """One queue item on its way through the server: awaitable, observable, cancelable.

    ``await run`` (or ``await run.result(timeout=...)``) gives the
    :class:`~invokeai_client.runs.results.WorkflowResult` once the item completed, and
    raises :class:`~invokeai_client.errors.RunFailedError` /
    :class:`~invokeai_client.errors.RunCanceledError` (carrying the item id, node id, error
    type, message and traceback) when it did not. ``run.events()`` yields typed events of
    this item; ``run.cancel()`` cancels it on the server.

    Cancelling the task that awaits a run cancels the server item too (shielded, bounded in
    time), unless :meth:`detach` was called or another task still awaits it.
    """

    __slots__ = (
        "__weakref__",
        "_error",
        "_gap",
        "_heard",
        "_images",
        "_listeners",
        "_open",
        "_outputs",
        "_ran",
        "_result",
        "_steps",
        "_waiters",
        "batch",
        "index",
        "item_id",
        "session_id",
        "status",
    )

    def __init__(self, batch: BatchRun, item_id: int) -> None:
        super().__init__(batch.batch_id)
        self.batch = batch
        self.item_id = item_id
        self.index = -1
        self.session_id: str | None = None
        self.status = "pending"
        self._outputs: dict[str, Any] | None = None
        self._images: list[ImageRef] | None = None
        # Nodes told as started and not yet completed: (graph node id, prepared id).
        self._open: list[tuple[str, Any]] | None = None
        self._ran = False  # the item executed (was in progress), as far as we know
        self._error: tuple[str | None, str | None, str | None, str | None] | None = None
        self._result: WorkflowResult | None = None
        # One future per task awaiting the run: cancelling one waiter never touches another.
        self._waiters: list[asyncio.Future[None]] | None = None
        self._listeners: list[Mailbox[RunEvent]] | None = None
        # Denoising previews seen per prepared node: (last step, total steps if known).
        self._steps: dict[Any, tuple[int, int | None]] | None = None
        self._heard = _now()
        # Events may have been missed (socket down at some point of this run's life): the
        # final result then comes from REST, never from a partial event history.
        self._gap = batch.gap or not batch.manager.context.connected

    def __repr__(self) -> str:
        return (
            f"<WorkflowRun item_id={self.item_id} batch_id={self.batch_id!r} "
            f"status={self.status!r}>"
        )

    # -- public --------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the run has its final result."""
        return self._result is not None

    @property
    def detached(self) -> bool:
        return self.batch.detached

    def detach(self) -> WorkflowRun:
        """Leave the server item alone when the awaiting task is cancelled or the client
        closes (the whole batch is detached); returns self."""
        self.batch.detached = True
        return self

    @property
    def outputs(self) -> Mapping[str, Any]:
        """The outputs mapped so far (all of them once the run is done)."""
        if self._result is not None:
            return self._result.outputs
        return dict(self._outputs or {})

    @property
    def current_node(self) -> str | None:
        """The graph node executing right now (as far as the socket told), or None."""
        return self._last_open() if self._result is None else None

    def _last_open(self) -> str | None:
        opened = self._open
        return opened[-1][0] if opened else None

    def result_nowait(self) -> WorkflowResult | None:
        """The result if the run is done, else None; never raises."""
        return self._result

    async def result(self, timeout: float | None = None) -> WorkflowResult:
        """Wait for the result; raise the run's error unless it completed.

        When ``timeout`` seconds pass first, the server item is canceled (unless the run
        is detached or awaited elsewhere) and :class:`~invokeai_client.errors.RunTimeoutError`
        says whether it was.
        """
        check_seconds("timeout", timeout)  # a bad timeout must not cancel the item
        result = self._result
        if result is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = []
            waiters.append(waiter)
            try:
                if timeout is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, timeout)
            except asyncio.TimeoutError:
                self._forget_waiter(waiter)
                canceled, outcome = await self._abandon()
                raise errors.RunTimeoutError(
                    f"queue item {self.item_id} did not finish within {timeout}s "
                    f"(last status {self.status!r}); {outcome}",
                    item_id=self.item_id,
                    batch_id=self.batch_id,
                    session_id=self.session_id,
                    status=self.status,
                    canceled=canceled,
                ) from None
            except asyncio.CancelledError:
                self._forget_waiter(waiter)
                await self._abandon()
                raise
            result = self._result
            assert result is not None
        return result.raise_for_status()

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)

    def __await__(self) -> Generator[Any, None, WorkflowResult]:
        return self.result().__await__()

    async def cancel(self) -> str:
        """Cancel the item on the server; returns its status afterwards.

        A finished item is left as it is (the server ignores the request), so this may
        return ``"completed"``.
        """
        await self.batch.manager.cancel_run(self)
        return self.status

    async def retry(self, *, detach: bool = False) -> WorkflowRun:
        """Run this failed or canceled item again (a new item in the same batch); returns
        the new item's run. See :meth:`RunManager.retry`."""
        return await self.batch.manager.retry(self, detach=detach)

    def events(self) -> AsyncIterator[RunEvent]:
        """Typed events of this run, ending after its terminal status.

        What happened before the call is replayed first (status, then each finished node
        as started + completed), so a late reader still sees the whole story; progress is
        live only. A slow reader never holds anything up: when more than a few dozen
        progress events wait, the oldest are dropped; nothing else is.
        """
        return _read_events([self])

    # -- routing (synchronous) -----------------------------------------------------------

    def on_node(
        self, name: str, data: dict[str, Any], invocation: dict[str, Any] | None
    ) -> None:
        """A node event of this item (raw payload; the router already dropped repeats)."""
        if self._result is not None:
            return
        self._heard = _now()
        self._running()
        if name == "invocation_complete":
            self._on_complete(data, invocation)
        elif name == "invocation_started":
            if self.session_id is None:
                self.session_id = data.get("session_id")
            node_id = data.get("invocation_source_id")
            if isinstance(node_id, str) and not self._ended(invocation):
                self._start(node_id, invocation)
        else:  # invocation_error
            self._error = (
                data.get("invocation_source_id"), data.get("error_type"),
                data.get("error_message"), data.get("error_traceback"),
            )
            self._try_finish()

    def on_status(self, status: str, data: dict[str, Any]) -> None:
        """A new status of this item from the socket."""
        if self._result is not None:
            return
        self._heard = _now()
        session_id = data.get("session_id")
        if session_id:
            self.session_id = session_id
        self._on_status(
            status, data.get("error_type"), data.get("error_message"),
            data.get("error_traceback"),
        )

    def on_progress(self, data: dict[str, Any]) -> None:
        if self._result is not None:
            return
        self._heard = _now()
        node_id = data.get("invocation_source_id")
        if not isinstance(node_id, str):
            return
        invocation = data.get("invocation")
        if not isinstance(invocation, dict):
            invocation = None
        if self._ended(invocation):
            return  # progress of a node already told as completed (events out of order)
        self._running()
        self._start(node_id, invocation)
        image = _preview(data.get("image"))
        step = total = None
        if image is not None:  # a denoising step: count it, even with nobody listening
            steps = self._steps
            if steps is None:
                steps = self._steps = {}
            key = invocation.get("id") if invocation else node_id
            last, known = steps.get(key, (-1, None))
            step, total = steps[key] = denoise_step(
                invocation, data.get("percentage"), last + 1, known
            )
        if self._listeners or self.batch._listeners:
            self._emit(
                NodeProgress(
                    self.item_id, self.batch_id, node_id, data.get("percentage"),
                    data.get("message") or "", image, step, total,
                )
            )

    def on_other(self, name: str, data: dict[str, Any]) -> None:
        if self._result is not None:
            return
        self._heard = _now()
        if name == "queue_items_canceled" and self.accept_status("canceled", None):
            self._on_status("canceled", None, None, None)
        elif name in _MODEL_LOADS and (self._listeners or self.batch._listeners):
            config = data.get("config")
            if not isinstance(config, dict):
                config = {}
            model = {k: config.get(k) for k in ("key", "hash", "name", "base", "type")}
            self._emit(_MODEL_LOADS[name](
                self.item_id, self.batch_id, model, data.get("submodel_type")
            ))

    def _running(self) -> None:
        """The item is executing (a node event or a finished result says so): a pending run
        is told as ``in_progress`` first, whatever order the events came in."""
        self._ran = True
        if self.status == "pending":
            self.status = "in_progress"
            self.batch._moved("pending", "in_progress")
            if self._listening:
                self._emit(StatusChanged(self.item_id, self.batch_id, "in_progress"))

    def _ended(self, invocation: dict[str, Any] | None) -> bool:
        """Whether this prepared node's complete or error event was already routed (its
        start or progress then arrives late, out of order)."""
        seen = self._seen
        if seen is None or invocation is None:
            return False
        prepared = invocation.get("id")
        return ("invocation_complete", prepared) in seen or (
            "invocation_error", prepared) in seen

    def _start(self, node_id: str, invocation: dict[str, Any] | None) -> tuple[str, Any]:
        """Tell ``NodeStarted`` once per prepared node; returns its key in ``_open``."""
        key = (node_id, invocation.get("id") if invocation else None)
        opened = self._open
        if opened is None:
            opened = self._open = []
        elif key in opened:
            return key
        opened.append(key)
        if self._listeners or self.batch._listeners:
            self._emit(
                NodeStarted(
                    self.item_id, self.batch_id, node_id,
                    invocation.get("type") if invocation else None, key[1],
                )
            )
        return key

    def _on_complete(self, data: dict[str, Any], invocation: dict[str, Any] | None) -> None:
        node_id = data.get("invocation_source_id")
        result = data.get("result")
        if not isinstance(node_id, str) or not isinstance(result, dict):
            return
        key = self._start(node_id, invocation)  # a start that comes later is ignored
        assert self._open is not None
        self._open.remove(key)
        if invocation is None:
            invocation = {}
        node_type = invocation.get("type")
        batch = self.batch
        value = map_output(result, batch.manager.image_host)
        outputs = self._outputs
        if outputs is None:
            outputs = self._outputs = {}
        if node_id in batch.iterated:
            values = outputs.setdefault(node_id, [])
            values.append(value)
            if len(values) > 1:
                batch.needs_order = True
        else:
            outputs[node_id] = value
        if type(value) not in _PLAIN and is_new_image_source(
            node_type, invocation.get("is_intermediate")
        ):
            images = self._images
            if images is None:
                images = self._images = []
            collect_images(value, images)
        if self._listeners or batch._listeners:
            self._emit(
                NodeCompleted(
                    self.item_id, self.batch_id, node_id, value, node_type, invocation.get("id")
                )
            )

    def _on_status(
        self,
        status: str,
        error_type: str | None,
        error_message: str | None,
        error_traceback: str | None,
    ) -> None:
        previous = self.status
        if previous in TERMINAL or status == previous:
            return
        if previous == "pending" and status in ("completed", "failed"):
            self._running()  # its in_progress event is late or was missed
            previous = self.status
        self.status = status
        self.batch._moved(previous, status)
        if status == "in_progress":
            self._ran = True
        if status not in TERMINAL:
            if self._listening:
                self._emit(StatusChanged(self.item_id, self.batch_id, status))
            return
        if status == "failed":
            known = self._error or (None, None, None, None)
            self._error = (
                known[0] or self._last_open(), error_type or known[1], error_message or known[2],
                error_traceback or known[3],
            )
        self._try_finish()

    def _events_complete(self) -> bool:
        """Whether the socket told the whole story of this completed item: an output of
        every graph node, and no iterated node whose several outputs need ordering."""
        outputs = self._outputs or {}
        if len(outputs) < self.batch.node_count:
            return False  # an event was missed or is still on its way (order not guaranteed)
        if self.batch.needs_order:
            iterated = self.batch.iterated
            return not any(
                node_id in iterated and len(value) > 1 for node_id, value in outputs.items()
            )
        return True

    def _try_finish(self) -> None:
        """Settle from the socket's story when it is complete; else ask REST, the truth.

        Completed items settle from events when every node's output arrived; canceled ones
        at once. Failed items, items whose events may have a gap (the socket dropped) and
        anything incomplete are read over REST (``session.results``), so both paths give
        the same result.
        """
        if self._result is not None or self.status not in TERMINAL:
            return
        if not self.batch.confirmed:
            return  # finished by BatchRun.confirm()
        status = self.status
        if self._gap or status == "failed" or (
            status == "completed" and not self._events_complete()
        ):
            self.batch.manager.check_soon(self)
            return
        self._settle(self._story_result(status))

    # -- REST catch-up -------------------------------------------------------------------

    def apply_item(self, item: SessionQueueItem) -> None:
        """Bring the run up to date with the queue item as REST reports it."""
        if self._result is not None:
            return
        self._heard = _now()
        if item.batch_id != self.batch_id:
            self.lose(f"item {self.item_id} now belongs to another batch")
            return
        if item.session_id:
            self.session_id = item.session_id
        status = item.status
        if status not in TERMINAL:
            self.apply_status(status, item.status_sequence)
            return
        self.accept_status(status, item.status_sequence)
        outputs, images = outputs_from_session(item.session, self.batch.manager.image_host)
        if status != "canceled" or outputs or item.started_at is not None:
            self._running()
        if self._listening:
            known = self._outputs or {}
            opened = {node_id for node_id, _ in self._open or ()}
            for done_id, value in outputs.items():
                if done_id not in known:
                    if done_id not in opened:
                        self._emit(NodeStarted(self.item_id, self.batch_id, done_id))
                    self._emit(NodeCompleted(self.item_id, self.batch_id, done_id, value))
        node_id: str | None = None
        if status == "failed":
            node_id = (
                failed_node_from_session(item.session)
                or (self._error[0] if self._error else None)
                or self._last_open()
            )
        previous = self.status
        if previous != status:
            self.status = status
            self.batch._moved(previous, status)
        self._settle(
            WorkflowResult(
                status=status,
                item_id=self.item_id,
                batch_id=self.batch_id,
                session_id=self.session_id,
                outputs=outputs,
                images=images,
                field_values=self.batch._values_at(self.index),
                error_node_id=node_id,
                error_type=item.error_type,
                error_message=item.error_message,
                error_traceback=item.error_traceback,
            )
        )

    def apply_status(self, status: str, sequence: int | None = None) -> None:
        """A non-terminal status seen over REST; never moves an item back to pending."""
        self._heard = _now()
        if self._result is not None or status == self.status:
            return
        if sequence is None and status == "pending":
            return
        if self.accept_status(status, sequence):
            self._on_status(status, None, None, None)

    def lose(self, why: str) -> None:
        """The server no longer knows this item (deleted or pruned before REST could read
        it): settle as the socket told its end (failed or canceled, or completed with every
        output), else as ``lost``."""
        if self._result is None and (
            self.status in ("failed", "canceled")
            or (self.status == "completed" and self._events_complete())
        ):
            node_id, error_type, message, traceback = self._error or (None, None, None, None)
            self._settle(
                self._story_result(
                    self.status, error_node_id=node_id, error_type=error_type,
                    error_message=message, error_traceback=traceback,
                )
            )
            return
        self.end_locally("lost", why)

    def end_locally(self, status: str, why: str) -> None:
        """Settle without the server's word (lost, or the client is closing)."""
        if self._result is not None:
            return
        previous, self.status = self.status, status
        self.batch._moved(previous, status)
        self._settle(self._story_result(status, error_message=why))

    def _story_result(self, status: str, **error: str | None) -> WorkflowResult:
        """A result from what the socket told (outputs and images as they arrived)."""
        return WorkflowResult(
            status=status,
            item_id=self.item_id,
            batch_id=self.batch_id,
            session_id=self.session_id,
            outputs=self._outputs or {},
            images=tuple(self._images or ()),
            field_values=self.batch._values_at(self.index),
            **error,
        )

    # -- settling ------------------------------------------------------------------------

    def _settle(self, result: WorkflowResult) -> None:
        self._result = result
        self._outputs = None
        self._images = None
        self._open = None
        self.forget_repeats()
        if self._listening:
            for event in _terminal_events(result):
                self._emit(event)
        if self._listeners:
            for mailbox in self._listeners:
                mailbox.close()
            self._listeners = None
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self.batch._settled(result)

    def _restore(self, result: WorkflowResult, index: int) -> None:
        """Become a settled run with ``result`` (a run rebuilt by its finished batch)."""
        self.index = index
        self.status = result.status
        self.session_id = result.session_id
        self._result = result
        self._ran = result.status != "canceled" or bool(result.outputs)

    async def _abandon(self) -> tuple[bool, str]:
        """The last waiter gave up: cancel the server item unless detached. Whether the
        server confirmed the cancel, and what happened in words."""
        if self._result is not None or self._waiters or self.batch.detached:
            return False, "it was left running on the server"
        return await self.batch.manager.cancel_run_shielded(self)

    # -- event readers -------------------------------------------------------------------

    @property
    def _listening(self) -> bool:
        return bool(self._listeners) or bool(self.batch._listeners)

    def _emit(self, event: RunEvent) -> None:
        if self._listeners:
            for mailbox in self._listeners:
                mailbox.put(event)
        if self.batch._listeners:
            for mailbox in self.batch._listeners:
                mailbox.put(event)

    def _replay(self, into: Mailbox[RunEvent]) -> None:
        """Put what already happened into a new reader's mailbox."""
        result = self._result
        outputs = result.outputs if result is not None else (self._outputs or {})
        started = self.status
        if result is not None or started in TERMINAL:
            # The terminal status is told once, at the end (when the run settles): until
            # then a run that ended but waits for REST is told as running, if it ran.
            ran = self._ran or outputs or self._open or self._error
            started = "in_progress" if ran else "pending"
        if started != "pending":
            into.put(StatusChanged(self.item_id, self.batch_id, started))
        for node_id, value in outputs.items():
            into.put(NodeStarted(self.item_id, self.batch_id, node_id))
            into.put(NodeCompleted(self.item_id, self.batch_id, node_id, value))
        if result is None:
            for node_id, prepared in self._open or ():
                into.put(NodeStarted(self.item_id, self.batch_id, node_id, prepared_id=prepared))
            return
        for event in _terminal_events(result):
            into.put(event)


def _terminal_events(result: WorkflowResult) -> list[RunEvent]:
    """The events that end a run with ``result``: its failure (if any), then its status."""
    status = StatusChanged(
        result.item_id, result.batch_id, result.status,
        error_type=result.error_type, error_message=result.error_message,
    )
    if result.status != "failed":
        return [status]
    failed = NodeFailed(
        result.item_id, result.batch_id, result.error_node_id, result.error_type,
        result.error_message, result.error_traceback,
    )
    return [failed, status]


async def _read_events(runs: Sequence[WorkflowRun], batch: BatchRun | None = None) -> (
    AsyncIterator[RunEvent]
):
    mailbox: Mailbox[RunEvent] = Mailbox(_is_progress)
    for run in runs:
        run._replay(mailbox)
    if batch is not None:
        if batch.done:
            mailbox.close()
        else:
            batch._listeners.append(mailbox)
    else:
        run = runs[0]
        if run._result is not None:
            mailbox.close()
        else:
            if run._listeners is None:
                run._listeners = []
            run._listeners.append(mailbox)
    try:
        while True:
            event = await mailbox.get()
            if event is None:
                return
            yield event
    finally:
        mailbox.close()
        owner: list[Mailbox[RunEvent]] | None = (
            batch._listeners if batch is not None else runs[0]._listeners
        )
        if owner is not None and mailbox in owner:
            owner.remove(mailbox)


class BatchRun:
    """The queue items of one ``enqueue_batch`` call (a sweep, ``runs=N``, or one run).

    ``async for result in batch.as_completed()`` yields each item's
    :class:`~invokeai_client.runs.results.WorkflowResult` as it finishes (failed ones too:
    check ``result.ok``), each exactly once; ``await batch.results()`` (or ``await batch``)
    gives them all in submission order. :attr:`counts` are live; :meth:`cancel` cancels every
    item still pending or running. Cancelling a task that waits on the batch cancels the
    batch on the server unless it is :meth:`detach` ed.
    """

    __slots__ = (
        "__weakref__",
        "_change",
        "_counts",
        "_finished",
        "_listeners",
        "_runs",
        "_waiters",
        "_weak",
        "batch_id",
        "confirmed",
        "destination",
        "detached",
        "expected",
        "gap",
        "groups",
        "held",
        "iterated",
        "key",
        "manager",
        "names",
        "needs_order",
        "node_count",
        "origin",
        "per_run",
        "priority",
    )

    def __init__(
        self,
        manager: RunManager,
        batch_id: str,
        *,
        expected: int,
        groups: list[list[dict[str, Any]]] | None = None,
        iterated: frozenset[str] = frozenset(),
        node_count: int = 0,
        origin: str | None = None,
        destination: str | None = None,
        detached: bool = False,
    ) -> None:
        self.manager = manager
        self.batch_id = batch_id
        self.key = batch_id
        self.expected = expected
        self.groups = groups
        self.names: Mapping[str, str] = {}
        """How ``field_values`` name a swept input: ``"node_id.field_name"`` -> the key the
        sweep used (its label); inputs not listed keep their full key."""
        self.per_run = 1
        for group in groups or ():
            self.per_run *= len(group[0]["items"])
        self.iterated = iterated
        self.node_count = node_count
        self.needs_order = False
        self.origin = origin
        self.destination = destination
        self.detached = detached
        self.priority = 0
        self.confirmed = False
        self.gap = not manager.context.connected  # events until the reconnect are lost
        self.held = 0
        self._runs: dict[int, WorkflowRun] = {}
        self._weak: dict[int, weakref.ref[WorkflowRun]] | None = None
        # Results (not runs) in the order they settled: no batch <-> run reference cycle here.
        self._finished: list[WorkflowResult] = []
        self._counts: dict[str, int] = {}
        self._change: asyncio.Future[None] | None = None
        self._listeners: list[Mailbox[RunEvent]] = []
        self._waiters = 0

    def __repr__(self) -> str:
        return (
            f"<BatchRun batch_id={self.batch_id!r} items={self.expected} "
            f"finished={len(self._finished)}>"
        )

    # -- public --------------------------------------------------------------------------

    @property
    def runs(self) -> list[WorkflowRun]:
        """The runs of the batch in submission order (ascending item id)."""
        return sorted(self._run_map().values(), key=lambda run: run.item_id)

    @property
    def item_ids(self) -> list[int]:
        return sorted(self._run_map())

    def __len__(self) -> int:
        return self.expected

    def __iter__(self) -> Iterator[WorkflowRun]:
        return iter(self.runs)

    def __getitem__(self, index: int) -> WorkflowRun:
        return self.runs[index]

    @property
    def done(self) -> bool:
        """Whether every item has its final result."""
        return self.confirmed and len(self._finished) >= self.expected

    @property
    def counts(self) -> BatchStatus:
        """Live counts of the items by status (from events and REST catch-up)."""
        counts = self._counts
        known = sum(counts.values())
        return BatchStatus(
            batch_id=self.batch_id,
            origin=self.origin,
            destination=self.destination,
            pending=counts.get("pending", 0) + max(0, self.expected - known),
            in_progress=counts.get("in_progress", 0),
            waiting=counts.get("waiting", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0) + counts.get("lost", 0),
            canceled=counts.get("canceled", 0),
            total=self.expected,
        )

    def detach(self) -> BatchRun:
        """Leave the server items alone when a waiting task is cancelled or the client
        closes; returns self."""
        self.detached = True
        return self

    async def cancel(self) -> int:
        """Cancel every pending or running item of the batch; returns how many were."""
        return await self.manager.cancel_batch(self)

    def events(self) -> AsyncIterator[RunEvent]:
        """Typed events of every item of the batch (see :meth:`WorkflowRun.events`)."""
        return _read_events(self.runs, self)

    async def as_completed(self) -> AsyncIterator[WorkflowResult]:
        """Each item's result as it finishes, exactly once; failed items included."""
        index = 0
        self._waiters += 1
        abandoned = False
        try:
            while True:
                finished = self._finished
                while index < len(finished):
                    result = finished[index]
                    index += 1
                    yield result
                if self.done:
                    return
                await self._wait_change()
        except asyncio.CancelledError:
            self._waiters -= 1
            abandoned = True
            await self._abandon()
            raise
        finally:
            if not abandoned:
                self._waiters -= 1

    async def results(self, timeout: float | None = None) -> list[WorkflowResult]:
        """Every item's result, in submission order, once all are done.

        Failed and canceled items are included (``result.ok`` is False); call
        ``result.raise_for_status()`` to turn one into its error. ``timeout`` bounds the
        wait like :meth:`WorkflowRun.result`.
        """
        check_seconds("timeout", timeout)  # a bad timeout must not cancel the batch
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._waiters += 1
        try:
            while not self.done:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise asyncio.TimeoutError
                if remaining is None:
                    await self._wait_change()
                else:
                    await asyncio.wait_for(self._wait_change(), remaining)
        except asyncio.TimeoutError:
            self._waiters -= 1
            canceled, outcome = await self._abandon()
            raise errors.RunTimeoutError(
                f"batch {self.batch_id} did not finish within {timeout}s "
                f"({len(self._finished)} of {self.expected} items done); {outcome}",
                batch_id=self.batch_id,
                canceled=canceled,
            ) from None
        except asyncio.CancelledError:
            self._waiters -= 1
            await self._abandon()
            raise
        self._waiters -= 1
        return [run._result for run in self.runs if run._result is not None]

    def __await__(self) -> Generator[Any, None, list[WorkflowResult]]:
        return self.results().__await__()

    # -- internals -----------------------------------------------------------------------

    async def _wait_change(self) -> None:
        change = self._change
        if change is None or change.done():
            change = self._change = asyncio.get_running_loop().create_future()
        await asyncio.shield(change)

    async def _abandon(self) -> tuple[bool, str]:
        if self.done or self._waiters > 0 or self.detached:
            return False, "it was left running on the server"
        return await self.manager.cancel_batch_shielded(self)

    def field_values(self, index: int) -> FieldValues:
        """The batch values substituted into the item at ``index`` (submission order), keyed
        as the sweep named them (see :class:`~invokeai_client.runs.FieldValues`)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.expected:
            raise errors.ValidationError(
                f"index must be an item position 0..{self.expected - 1} of this batch, "
                f"got {index!r}",
                input="index",
                rule=f"0 <= index < {self.expected}",
            )
        return self._values_at(index)

    def _values_at(self, index: int) -> FieldValues:
        # Lenient: a run not placed in its batch yet (index -1) has no values.
        groups = self.groups
        if not groups or index < 0:
            return FieldValues({})
        position = index % self.per_run
        values: dict[str, Any] = {}
        picks: list[int] = []
        for group in reversed(groups):
            size = len(group[0]["items"])
            picks.append(position % size)
            position //= size
        picks.reverse()
        for group, pick in zip(groups, picks, strict=True):
            for datum in group:
                values[f"{datum['node_path']}.{datum['field_name']}"] = datum["items"][pick]
        return FieldValues(values, self.names)

    # called by the router (synchronously)

    def adopt(self, item_id: int) -> WorkflowRun | None:
        """An item of this batch seen on the socket before the enqueue answer."""
        if self.confirmed:
            return None  # e.g. a retry of one of our items: not part of this batch run
        run = self._runs.get(item_id)
        if run is None:
            if len(self._runs) >= self.expected:
                # More items than the batch asked for: not all of them are ours. Keep none
                # beyond that; the enqueue answer names the real ones, read over REST then.
                self.gap = True
                return None
            run = self._runs[item_id] = WorkflowRun(self, item_id)
            self._moved(None, "pending")
        return run

    # called by the manager

    def confirm(self, answer: EnqueueBatchResult) -> None:
        """The enqueue answer (or its REST reconstruction): learn every item id."""
        router = self.manager.router
        ids = sorted(answer.item_ids)
        self.priority = answer.priority
        self.expected = len(ids) if ids else answer.enqueued
        if ids:  # runs made for items the server did not confirm are phantoms: forget them
            confirmed = set(ids)
            for item_id, phantom in list(self._runs.items()):
                if item_id not in confirmed:
                    del self._runs[item_id]
                    router.remove_item(item_id, phantom)
                    self._counts[phantom.status] -= 1
        for index, item_id in enumerate(ids):
            run = self._runs.get(item_id)
            if run is None:
                run = self._runs[item_id] = WorkflowRun(self, item_id)
                self._moved(None, "pending")
            run.index = index
            router.add_item(item_id, run)
        self.confirmed = True
        for run in list(self._runs.values()):
            if self.gap and run._result is None:
                # The socket dropped while the enqueue was in flight: events may be lost.
                self.manager.check_soon(run)
            run._try_finish()
        if self.done:
            self._all_settled()

    def _moved(self, previous: str | None, status: str) -> None:
        counts = self._counts
        if previous is not None:
            counts[previous] = counts.get(previous, 0) - 1
        counts[status] = counts.get(status, 0) + 1

    def _settled(self, result: WorkflowResult) -> None:
        self._finished.append(result)
        self.manager._run_settled(self)
        change = self._change
        if change is not None and not change.done():
            change.set_result(None)
        if self.done:
            self._all_settled()

    def _all_settled(self) -> None:
        if self._weak is not None:
            return  # already done (confirm() may get here twice)
        for mailbox in self._listeners:
            mailbox.close()
        self._listeners = []
        change = self._change
        if change is not None and not change.done():
            change.set_result(None)
        self.manager._batch_done(self)
        # Each run refers to its batch; from now on the batch refers to its settled runs
        # weakly, so a finished batch and its runs are freed by reference counting, not by
        # the cycle collector. A run nobody holds any more is rebuilt from its result.
        weak = self._weak = {}
        runs = self._runs
        for item_id, run in list(runs.items()):
            if run._result is not None:
                weak[item_id] = weakref.ref(run)
                del runs[item_id]

    def _only_run(self) -> WorkflowRun:
        """The run of a one-item batch."""
        runs = self._runs if self._weak is None else self._run_map()
        if len(runs) == 1:
            return next(iter(runs.values()))
        return self.runs[0]

    def _run_map(self) -> dict[int, WorkflowRun]:
        """Every run of the batch by item id (rebuilding settled ones nobody holds)."""
        weak = self._weak
        if weak is None:
            return self._runs
        runs = dict(self._runs)
        rebuilt: list[WorkflowRun] = []
        for item_id, ref in weak.items():
            run = ref()
            if run is None:
                run = WorkflowRun(self, item_id)
                rebuilt.append(run)
                weak[item_id] = weakref.ref(run)
            runs[item_id] = run
        if rebuilt:
            results = {result.item_id: result for result in self._finished}
            order = sorted(runs)
            for run in rebuilt:
                run._restore(results[run.item_id], order.index(run.item_id))
        return runs

    def unsettled(self) -> list[WorkflowRun]:
        return [run for run in self._runs.values() if run._result is None]
