"""The queue's processor: one worker that takes items by priority (users in turn) and runs
their graphs node by node, with InvokeAI's events, failures, cache and cancellation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
import traceback
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ..nodes import MissingInputException, NodeContext, NodeInputError, UnsupportedNodeError
from ..records import db_timestamp
from .events import item_event
from .session import Session
from .state import TERMINAL

if TYPE_CHECKING:
    from ..app import DoubleApp
    from ..nodes import NodeSpec
    from ..records import DoubleImage
    from .events import QueueEvents
    from .state import Item, QueueState


class Processor:
    """Runs the items of a :class:`QueueState`, sending their events through ``events``."""

    def __init__(self, double: DoubleApp, state: QueueState, events: QueueEvents) -> None:
        self.double = double
        self.state = state
        self.events = events

    async def run_forever(self) -> None:
        while True:
            item = self.state.dequeue()
            if item is None:
                self.state.wake_event.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.state.wake_event.wait(), 1.0)
                continue
            try:
                await self._run(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in the double must not kill its processor
                if item.status == "in_progress":
                    item.error_type = type(exc).__name__
                    item.error_message = str(exc)
                    item.error_traceback = traceback.format_exc()
                    if self.state.transition(item, "failed"):
                        await self.events.emit_status(item)
            finally:
                self.state.running = None
            await asyncio.sleep(0)  # let requests and socket writers run between items

    async def _run(self, item: Item) -> None:
        self.state.running = item
        now = db_timestamp()
        item.started_at = now
        item.device = "cpu"
        self.state.transition(item, "in_progress")
        item.updated_at = now
        if self.state.faults.shuffle_item_events:
            self.events.hold(item)
        try:
            await self.events.emit_status(item)
            session = Session(item.plan, item.nodes(), item.session_id)
            item.session = session
            while item.status == "in_progress":
                try:
                    exec_id = session.next()
                except NodeInputError as exc:  # an edge brought a value the node refuses
                    await self._fail(item, session, exc.exec_id, exc)
                    break
                except Exception as exc:  # an input that does not fit its field
                    await self._fail(item, session, None, exc)
                    break
                if exec_id is None:
                    break
                if not await self._run_node(item, session, exec_id):
                    break
            completed = item.status == "in_progress" and not session.errors
            if completed and self.state.transition(item, "completed"):
                await self.events.emit_status(item)
        finally:
            if item.session is not None:
                item.session.finish()
            await self.events.release_held(item)

    def _invocation_payload(self, item: Item, session: Session, exec_id: str) -> dict[str, Any]:
        node = session.exec_nodes[exec_id]
        if node["type"] in ("iterate", "collect"):
            node = {**node, "collection": []}
        return {
            **item_event(item),
            "session_id": item.session_id,
            "invocation": node,
            "invocation_source_id": session.prepared_source[exec_id],
        }

    async def _run_node(self, item: Item, session: Session, exec_id: str) -> bool:
        node = session.exec_nodes[exec_id]
        spec = item.plan.specs[session.prepared_source[exec_id]]
        base = self._invocation_payload(item, session, exec_id)
        await self.events.emit_private("invocation_started", base, item)
        faults = self.state.faults
        delay = faults.node_delays.get(node["type"], faults.node_delay)
        saved: list[DoubleImage] = []
        try:
            if spec is None:
                raise UnsupportedNodeError(node["type"])
            for field_spec in spec.fields:
                if field_spec.required and node.get(field_spec.name) is None:
                    raise MissingInputException(spec.type, field_spec.name)
            key, result = self.state.cache.lookup(node, self.double.images)
            if result is None:
                result = await self._invoke(item, node, spec, base, delay, saved)
                if result is None:
                    return False  # canceled at a progress step
                if key is not None:
                    self.state.cache.save(key, result)
            elif delay:
                await asyncio.sleep(delay)
        except Exception as exc:
            await self._fail(item, session, exec_id, exc)
            return False
        for record in saved:
            progress = {
                **base,
                "timestamp": int(time.time()),
                "message": "Saving image",
                "percentage": None,
                "image": None,
                "device": None,
            }
            await self.events.emit_private("invocation_progress", progress, item, True)
            self.double.images[record.image_name] = record
        session.complete(exec_id, result)
        await self.events.emit_private(
            "invocation_complete",
            {**base, "timestamp": int(time.time()), "result": result},
            item,
        )
        return True

    async def _invoke(self, item: Item, node: dict[str, Any], spec: NodeSpec,
                      base: dict[str, Any], delay: float,
                      saved: list[DoubleImage]) -> dict[str, Any] | None:
        """Run the node's code (after its delay and progress steps); None when it stopped
        at a progress step because the item was canceled."""
        steps = self.state.faults.progress_steps
        if steps > 0:
            size = self.state.faults.progress_preview
            for step in range(steps):
                if delay:
                    await asyncio.sleep(delay / steps)
                if item.status != "in_progress":
                    return None  # like InvokeAI's CanceledException in a step callback
                progress = {
                    **base,
                    "timestamp": int(time.time()),
                    "message": f"Step {step + 1}/{steps}",
                    "percentage": (step + 1) / steps,
                    "image": preview(size, (step + 1) / steps) if size else None,
                    "device": None,
                }
                await self.events.emit_private("invocation_progress", progress, item, True)
        elif delay:
            await asyncio.sleep(delay)
        context = NodeContext(
            self.double.images,
            node=node,
            session_id=item.session_id,
            user_id=item.user_id,
            graph_json=item.graph_json,
            workflow_json=item.plan.workflow_json,
        )
        if spec.uses_images:
            output = await anyio.to_thread.run_sync(spec.run, node, context)
        else:
            output = spec.run(node, context)
        saved.extend(context.saved)
        return {"output_meta": None, **output, "type": spec.output_type}

    async def _fail(self, item: Item, session: Session, exec_id: str | None,
                    exc: BaseException) -> None:
        error_type = type(exc).__name__
        message = str(exc)
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if exec_id is not None:
            session.errors[exec_id] = f"{error_type}: {message}"
        if item.status not in TERMINAL and not item.deleted:
            item.error_type, item.error_message, item.error_traceback = error_type, message, trace
            if self.state.transition(item, "failed"):
                await self.events.emit_status(item)
        if exec_id is not None and not item.deleted:
            payload = {
                **self._invocation_payload(item, session, exec_id),
                "error_type": error_type,
                "error_message": message,
                "error_traceback": trace,
            }
            await self.events.emit_private("invocation_error", payload, item)


def preview(size: tuple[int, int], done: float) -> dict[str, Any]:
    """A progress preview as InvokeAI sends it: a JPEG data URL, brighter as ``done`` grows."""
    from PIL import Image

    width, height = size
    level = round(255 * done)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (level, level, level)).save(buffer, format="JPEG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"width": width, "height": height, "dataURL": f"data:image/jpeg;base64,{data}"}
