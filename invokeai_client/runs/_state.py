"""The state of one queue item, without I/O: frames and REST snapshots in, events and a result out.

:class:`ItemState` is a plain class. The socket's frames (raw payloads, after the router's
repeat filter) go to :meth:`ItemState.on_frame`; what REST reports goes to
:meth:`~ItemState.apply_item` (the whole queue item) and :meth:`~ItemState.apply_status` (a
status summary); :meth:`~ItemState.lose` and :meth:`~ItemState.end_locally` end an item the
server no longer knows or that the client gives up on. What comes out goes to an
:class:`ItemObserver`: status moves (for the batch's counts), typed events for readers
(:class:`EventSink` s), "read me over REST" requests and, once, the final
:class:`~invokeai_client.runs.results.WorkflowResult`.

Its rules (each a story the socket really tells): a pending item that shows activity or
ends is told as ``in_progress`` first; statuses are ordered by ``status_sequence`` (by value
without one), a terminal status is final and REST never moves an item back to ``pending``;
a node's start or progress after its end, and anything after the item ended, is ignored;
``failed`` may come before its ``invocation_error`` (the error is read over REST); a
completed item settles from the socket only when every output arrived and no event can be
missing (``gap``), otherwise from REST (the truth), so both paths give the same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..types.queue import SessionQueueItem
from ._shape import MAX_NODE_FRAMES, BatchShape
from .events import (
    ModelLoadCompleted,
    ModelLoadStarted,
    NodeCompleted,
    NodeProgress,
    NodeStarted,
    RunEvent,
    StatusChanged,
    denoise_step,
    preview_image,
    terminal_events,
)
from .results import (
    ImageRef,
    WorkflowResult,
    collect_images,
    failed_node_from_session,
    is_new_image_source,
    map_output,
    outputs_from_session,
)

__all__ = ["TERMINAL", "BatchShape", "EventSink", "ItemObserver", "ItemState"]

TERMINAL = frozenset({"completed", "failed", "canceled", "lost"})
"""Statuses after which an item never changes again."""

_MODEL_LOADS = {
    "model_load_started": ModelLoadStarted, "model_load_complete": ModelLoadCompleted,
}

_PLAIN = (int, float, str, bool, type(None))
"""Output values that cannot hold an image."""


class EventSink(Protocol):
    """Where a reader's events go (a mailbox): ``put`` never blocks; ``close`` ends it."""

    def put(self, item: RunEvent) -> None: ...

    def close(self) -> None: ...


class ItemObserver(Protocol):
    """What hears an item's state change (the item's batch)."""

    @property
    def listeners(self) -> Sequence[EventSink]:
        """Readers of every item of the batch."""

    def moved(self, previous: str | None, status: str) -> None:
        """The item's status moved (``previous`` None: a new item, counted as pending)."""

    def check_rest(self, state: ItemState) -> None:
        """The socket's story cannot settle the item: read it over REST soon."""

    def settled(self, state: ItemState, result: WorkflowResult) -> None:
        """The item has its final result (called once)."""


ErrorInfo = tuple[str | None, str | None, str | None, str | None]
"""(node id, error type, message, traceback) of a failure."""


class ItemState:
    """The state of one queue item; see the module doc. Synchronous and free of I/O."""

    __slots__ = (
        "__weakref__", "_ended", "_error", "_images", "_open", "_outputs", "_ran", "_sequence",
        "_steps", "batch", "clock", "gap", "heard", "index", "item_id", "listeners", "observer",
        "result", "session_id", "status"
    )

    def __init__(
        self,
        item_id: int,
        batch: BatchShape,
        observer: ItemObserver,
        *,
        gap: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.item_id = item_id
        self.batch = batch
        self.observer = observer
        self.index = -1
        self.session_id: str | None = None
        self.status = "pending"
        self.result: WorkflowResult | None = None
        self.listeners: list[EventSink] | None = None  # readers of this item alone
        self.clock = clock
        self.heard = clock()
        # Events may have been missed (socket down at some point of this item's life): the
        # final result then comes from REST, never from a partial event history.
        self.gap = gap
        self._sequence: int | None = None
        self._outputs: dict[str, Any] | None = None
        self._images: list[ImageRef] | None = None
        # Nodes told as started and not yet completed: (graph node id, prepared id).
        self._open: list[tuple[str, Any]] | None = None
        self._ended: set[Any] | None = None  # prepared ids whose complete/error arrived
        self._ran = False  # the item executed (was in progress), as far as we know
        self._error: ErrorInfo | None = None
        # Denoising previews seen per prepared node: (last step, total steps if known).
        self._steps: dict[Any, tuple[int, int | None]] | None = None

    def __repr__(self) -> str:
        return f"<ItemState {self.item_id} {self.status!r}>"

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs mapped so far (all of them once settled)."""
        if self.result is not None:
            return dict(self.result.outputs)
        return dict(self._outputs or {})

    @property
    def current_node(self) -> str | None:
        """The graph node executing now (as far as the socket told), or None."""
        opened = self._open
        return opened[-1][0] if opened and self.result is None else None

    # -- socket frames -------------------------------------------------------------------

    def on_frame(self, name: str, data: dict[str, Any]) -> None:
        """One socket frame of this item (raw payload; the router dropped exact repeats)."""
        if self.result is None:
            self.heard = self.clock()
            handler = _FRAME_HANDLERS.get(name)
            if handler is not None:
                handler(self, name, data)

    def _on_status_frame(self, name: str, data: dict[str, Any]) -> None:
        status = data.get("status")
        if not isinstance(status, str) or not self._news(status, data.get("status_sequence")):
            return
        session_id = data.get("session_id")
        if session_id:
            self.session_id = session_id
        self._on_status(
            status, data.get("error_type"), data.get("error_message"),
            data.get("error_traceback"),
        )

    def _on_canceled_frame(self, name: str, data: dict[str, Any]) -> None:
        if self._news("canceled", None):
            self._on_status("canceled", None, None, None)

    def _on_model_load(self, name: str, data: dict[str, Any]) -> None:
        if not self.listeners or self.observer.listeners:
            return
        config = data.get("config")
        if not isinstance(config, dict):
            config = {}
        model = {k: config.get(k) for k in ("key", "hash", "name", "base", "type")}
        self._emit(_MODEL_LOADS[name](
            self.item_id, self.batch.batch_id, model, data.get("submodel_type")
        ))

    def _news(self, status: str, sequence: Any) -> bool:
        """Whether a status report (socket or REST) is news: newer by sequence, or (without
        one) a different status. A terminal status is final."""
        if self.status in TERMINAL:
            return False
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            sequence = None
        if sequence is not None and self._sequence is not None:
            if sequence <= self._sequence:
                return False
        elif status == self.status:
            return False
        if sequence is not None:
            self._sequence = sequence
        return True

    def _takes(self, node_id: object) -> bool:
        """Whether a node frame is taken: its node is in the graph (any, when the graph is
        unknown) and fewer than MAX_NODE_FRAMES nodes ended. Else the result comes from REST
        (no growth, no faked complete story)."""
        types = self.batch.node_types
        ended = self._ended
        if (types is None or (isinstance(node_id, str) and node_id in types)) and (
            ended is None or len(ended) < MAX_NODE_FRAMES
        ):
            if self.status == "pending":
                self._running()  # a taken node frame: the item is executing
            self._ran = True
            return True
        self.gap = True
        return False

    def _on_started(self, name: str, data: dict[str, Any]) -> None:
        node_id = data.get("invocation_source_id")
        if not self._takes(node_id):
            return
        if self.session_id is None:
            self.session_id = data.get("session_id")
        invocation = data.get("invocation")
        if not isinstance(invocation, dict):
            invocation = None
        elif self._ended and invocation.get("id") in self._ended:
            return  # started after its end (events out of order)
        if isinstance(node_id, str):
            self._start(node_id, invocation)

    def _on_error(self, name: str, data: dict[str, Any]) -> None:
        node_id = data.get("invocation_source_id")
        if not self._takes(node_id):
            return
        invocation = data.get("invocation")
        if isinstance(invocation, dict):
            self._end(invocation.get("id"))
        self._error = (
            node_id, data.get("error_type"), data.get("error_message"),
            data.get("error_traceback"),
        )
        self.finish_if_told()

    def _on_progress(self, name: str, data: dict[str, Any]) -> None:
        node_id = data.get("invocation_source_id")
        if not isinstance(node_id, str) or not self._takes(node_id):
            return
        invocation = data.get("invocation")
        if not isinstance(invocation, dict):
            invocation = None
        elif self._ended and invocation.get("id") in self._ended:
            return  # progress of a node already told as completed (events out of order)
        self._start(node_id, invocation)
        image = preview_image(data.get("image"))
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
        if self.listeners or self.observer.listeners:
            self._emit(
                NodeProgress(
                    self.item_id, self.batch.batch_id, node_id, data.get("percentage"),
                    data.get("message") or "", image, step, total,
                )
            )

    def _running(self) -> None:
        """The item is executing: a pending item is told as ``in_progress`` first, whatever
        order the events came in."""
        self._ran = True
        if self.status == "pending":
            self.status = "in_progress"
            self.observer.moved("pending", "in_progress")
            if self.listeners or self.observer.listeners:
                self._emit(StatusChanged(self.item_id, self.batch.batch_id, "in_progress"))

    def _end(self, prepared: Any) -> None:
        ended = self._ended
        if ended is None:
            self._ended = {prepared}
        else:
            ended.add(prepared)

    def _start(self, node_id: str, invocation: dict[str, Any] | None) -> tuple[str, Any]:
        """Tell ``NodeStarted`` once per prepared node; returns its key in ``_open``."""
        key = (node_id, invocation.get("id") if invocation else None)
        opened = self._open
        if opened is None:
            opened = self._open = []
        elif key in opened:
            return key
        opened.append(key)
        if self.listeners or self.observer.listeners:
            self._emit(
                NodeStarted(
                    self.item_id, self.batch.batch_id, node_id,
                    invocation.get("type") if invocation else None, key[1],
                )
            )
        return key

    def _on_complete(self, name: str, data: dict[str, Any]) -> None:
        node_id = data.get("invocation_source_id")
        if not self._takes(node_id):
            return
        invocation = data.get("invocation")
        if not isinstance(invocation, dict):
            invocation = None
        else:
            self._end(invocation.get("id"))
        result = data.get("result")
        if not isinstance(node_id, str) or not isinstance(result, dict):
            return
        key = self._start(node_id, invocation)  # a start that comes later is ignored
        assert self._open is not None
        self._open.remove(key)
        invocation = invocation or {}
        node_type = invocation.get("type")
        batch = self.batch
        value = map_output(result, batch.image_host)
        outputs = self._outputs
        if outputs is None:
            outputs = self._outputs = {}
        if node_id in batch.iterated:
            outputs.setdefault(node_id, []).append(value)
        else:
            outputs[node_id] = value
        if type(value) not in _PLAIN and is_new_image_source(
            node_type, invocation.get("is_intermediate")
        ):
            images = self._images
            if images is None:
                images = self._images = []
            collect_images(value, images)
        if self.listeners or self.observer.listeners:
            self._emit(
                NodeCompleted(
                    self.item_id, batch.batch_id, node_id, value, node_type, invocation.get("id")
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
        self.observer.moved(previous, status)
        if status == "in_progress":
            self._ran = True
        if status not in TERMINAL:
            if self.listeners or self.observer.listeners:
                self._emit(StatusChanged(self.item_id, self.batch.batch_id, status))
            return
        if status == "failed":
            known = self._error or (None, None, None, None)
            opened = self._open
            self._error = (
                known[0] or (opened[-1][0] if opened else None), error_type or known[1],
                error_message or known[2], error_traceback or known[3],
            )
        self.finish_if_told()

    def _events_complete(self) -> bool:
        """Whether the socket told the whole story of this completed item: an output of
        every graph node, and no iterated node (no event says how many times one runs, and
        REST orders their outputs; one heard so far may be one of several)."""
        batch = self.batch
        if batch.iterated:
            return False
        # Fewer: an event was missed or is still on its way (order not guaranteed).
        return len(self._outputs or ()) >= batch.node_count

    def finish_if_told(self) -> None:
        """Settle from the socket's story when it is complete (completed with every output,
        or canceled), else ask REST (failed, a gap, anything incomplete); nothing settles
        before the batch is confirmed (then the batch calls this for each item)."""
        if self.result is not None or self.status not in TERMINAL or not self.batch.confirmed:
            return
        status = self.status
        if self.gap or status == "failed" or (
            status == "completed" and not self._events_complete()
        ):
            self.observer.check_rest(self)
            return
        self._settle(self._story_result(status))

    # -- REST snapshots ------------------------------------------------------------------

    def apply_item(self, item: SessionQueueItem) -> None:
        """Bring the item up to date with the queue item as REST reports it."""
        if self.result is not None:
            return
        self.heard = self.clock()
        if item.batch_id != self.batch.batch_id:
            self.lose(f"item {self.item_id} now belongs to another batch")
            return
        if item.session_id:
            self.session_id = item.session_id
        status = item.status
        if status not in TERMINAL:
            self.apply_status(status, item.status_sequence)
            return
        self._news(status, item.status_sequence)
        outputs, images = outputs_from_session(item.session, self.batch.image_host)
        if status != "canceled" or outputs or item.started_at is not None:
            self._running()
        if self.listeners or self.observer.listeners:
            self._tell_outputs(outputs)
        node_id: str | None = None
        if status == "failed":
            opened = self._open
            node_id = (
                failed_node_from_session(item.session)
                or (self._error[0] if self._error else None)
                or (opened[-1][0] if opened else None)
            )
        previous = self.status
        if previous != status:
            self.status = status
            self.observer.moved(previous, status)
        self._settle(
            WorkflowResult(
                status=status,
                item_id=self.item_id,
                batch_id=self.batch.batch_id,
                session_id=self.session_id,
                outputs=outputs,
                images=images,
                field_values=self.batch.values_at(self.index),
                error_node_id=node_id,
                error_type=item.error_type,
                error_message=item.error_message,
                error_traceback=item.error_traceback,
            )
        )

    def _tell_outputs(self, outputs: Mapping[str, Any]) -> None:
        """Tell readers the nodes REST reports finished that the socket did not."""
        known = self._outputs or {}
        opened = {node_id for node_id, _ in self._open or ()}
        item, batch_id, types = self.item_id, self.batch.batch_id, self.batch.node_type
        for done_id, value in outputs.items():
            if done_id not in known:
                if done_id not in opened:
                    self._emit(NodeStarted(item, batch_id, done_id, types(done_id)))
                self._emit(NodeCompleted(item, batch_id, done_id, value, types(done_id)))

    def apply_status(self, status: str, sequence: int | None = None) -> None:
        """A non-terminal status seen over REST; never moves an item back to pending."""
        self.heard = self.clock()
        if self.result is not None or status == self.status:
            return
        if sequence is None and status == "pending":
            return
        if self._news(status, sequence):
            self._on_status(status, None, None, None)

    def lose(self, why: str) -> None:
        """The server no longer knows this item (deleted or pruned before REST could read
        it): settle as the socket told its end (failed or canceled, or completed with every
        output), else as ``lost``."""
        if self.result is None and (
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
        if self.result is not None:
            return
        previous, self.status = self.status, status
        self.observer.moved(previous, status)
        self._settle(self._story_result(status, error_message=why))

    def _story_result(self, status: str, **error: str | None) -> WorkflowResult:
        """A result from what the socket told (outputs and images as they arrived)."""
        return WorkflowResult(
            status=status,
            item_id=self.item_id,
            batch_id=self.batch.batch_id,
            session_id=self.session_id,
            outputs=self._outputs or {},
            images=tuple(self._images or ()),
            field_values=self.batch.values_at(self.index),
            **error,
        )

    # -- settling and readers ------------------------------------------------------------

    def _settle(self, result: WorkflowResult) -> None:
        self.result = result
        self._outputs = self._images = self._open = None
        self._ended = self._steps = None
        if self.listeners or self.observer.listeners:
            for event in terminal_events(result):
                self._emit(event)
        listeners, self.listeners = self.listeners, None
        for sink in listeners or ():
            sink.close()
        self.observer.settled(self, result)

    def restore(self, result: WorkflowResult, index: int) -> None:
        """Become a settled item with ``result`` (rebuilt by its finished batch)."""
        self.index = index
        self.status = result.status
        self.session_id = result.session_id
        self.result = result
        self._ran = result.status != "canceled" or bool(result.outputs)

    def _emit(self, event: RunEvent) -> None:
        for sink in self.listeners or ():
            sink.put(event)
        for sink in self.observer.listeners:
            sink.put(event)

    def replay(self) -> list[RunEvent]:
        """What already happened, as events for a new reader: the status, then each
        finished node as started + completed, then open nodes, or the end."""
        result = self.result
        batch_id = self.batch.batch_id
        outputs = result.outputs if result is not None else (self._outputs or {})
        started = self.status
        if result is not None or started in TERMINAL:
            # The terminal status is told once, at the end (when the item settles): until
            # then an item that ended but waits for REST is told as running, if it ran.
            ran = self._ran or outputs or self._open or self._error
            started = "in_progress" if ran else "pending"
        events: list[RunEvent] = []
        if started != "pending":
            events.append(StatusChanged(self.item_id, batch_id, started))
        item, types = self.item_id, self.batch.node_type  # told after the fact: by the graph
        for node_id, value in outputs.items():
            events.append(NodeStarted(item, batch_id, node_id, types(node_id)))
            events.append(NodeCompleted(item, batch_id, node_id, value, types(node_id)))
        if result is None:
            for node_id, prepared in self._open or ():
                events.append(NodeStarted(item, batch_id, node_id, types(node_id), prepared))
            return events
        events.extend(terminal_events(result))
        return events


_FRAME_HANDLERS: dict[str, Callable[[ItemState, str, dict[str, Any]], None]] = {
    "invocation_started": ItemState._on_started,
    "invocation_complete": ItemState._on_complete,
    "invocation_error": ItemState._on_error,
    "invocation_progress": ItemState._on_progress,
    "queue_item_status_changed": ItemState._on_status_frame,
    "queue_items_canceled": ItemState._on_canceled_frame,
    "model_load_started": ItemState._on_model_load,
    "model_load_complete": ItemState._on_model_load,
}
"""What each socket frame of an item goes to (one dict lookup per frame)."""
