"""``invokeai_client.web.event_dict``: every kind of run event becomes its own JSON frame
with what a progress UI needs (steps, the model being loaded, node types)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import pytest

from invokeai_client import NodeCompleted, NodeStarted, RunEvent
from invokeai_client.web import event_dict

from .conftest import Peer

MODEL = {"key": "k1", "hash": "h", "name": "tiny-sd1", "base": "sd-1", "type": "main"}
VALUES: dict[str, Any] = {  # one value per field any event kind has
    "item_id": 7, "batch_id": "b1", "status": "failed", "error_type": "ValueError",
    "error_message": "bad", "error_traceback": "tb", "node_id": "n1", "node_type": "l2i",
    "prepared_id": "p1", "percentage": 0.5, "message": "Denoising", "image": None, "step": 3,
    "total": 6, "model": MODEL, "submodel_type": "unet", "output": 1, "server": "http://a:9090",
    "previous": None,
}
EXPECTED: dict[str, dict[str, Any]] = {  # class name -> the frame (beyond item/batch ids)
    "StatusChanged": {"type": "status", "status": "failed", "terminal": True,
                      "error_type": "ValueError", "error_message": "bad"},
    "NodeStarted": {"type": "node_started", "node_id": "n1", "node_type": "l2i"},
    "NodeProgress": {"type": "progress", "node_id": "n1", "percentage": 0.5,
                     "message": "Denoising", "step": 3, "total": 6},
    "ModelLoad": {"type": "model_load", "name": "tiny-sd1", "base": "sd-1",
                  "model_type": "main", "key": "k1", "submodel_type": "unet"},
    "ModelLoadStarted": {"type": "model_load_started", "name": "tiny-sd1", "base": "sd-1",
                         "model_type": "main", "key": "k1", "submodel_type": "unet"},
    "ModelLoadCompleted": {"type": "model_load_completed", "name": "tiny-sd1", "base": "sd-1",
                           "model_type": "main", "key": "k1", "submodel_type": "unet"},
    "NodeCompleted": {"type": "node_completed", "node_id": "n1", "node_type": "l2i"},
    "NodeFailed": {"type": "node_failed", "node_id": "n1", "error_type": "ValueError",
                   "error_message": "bad"},
    "ServerAssigned": {"type": "server_assigned", "server": "http://a:9090", "previous": None},
}


def kinds(cls: type[RunEvent] = RunEvent) -> list[type[RunEvent]]:
    """Every subclass, as its module defines it (``slots=True`` dataclasses leave the
    first class made behind in ``__subclasses__``)."""
    found: list[type[RunEvent]] = []
    for sub in cls.__subclasses__():
        if getattr(sys.modules[sub.__module__], sub.__name__, None) is sub:
            found += [sub, *kinds(sub)]
    return found


def test_every_run_event_kind_is_in_the_table() -> None:
    assert sorted(kind.__name__ for kind in kinds()) == sorted(EXPECTED)


@pytest.mark.parametrize("kind", kinds(), ids=lambda kind: kind.__name__)
def test_every_run_event_kind_becomes_its_own_frame(kind: type[RunEvent]) -> None:
    event = kind(**{f.name: VALUES[f.name] for f in dataclasses.fields(kind)})
    frame = event_dict(event)
    assert frame == {"item_id": 7, "batch_id": "b1", **EXPECTED[kind.__name__]}
    assert json.loads(json.dumps(frame)) == frame


@pytest.mark.anyio
async def test_a_late_reader_is_told_the_node_types(double: Peer) -> None:
    """A stream opened after the run ran (POST, then GET the events) still names each
    node's invocation type."""
    async with double.client() as client:
        run = await client.runs.submit({"nodes": {"a": {"id": "a", "type": "integer",
                                                        "value": 3}}, "edges": []})
        await run
        events = [event async for event in run.events()]
    nodes = [e for e in events if isinstance(e, (NodeStarted, NodeCompleted))]
    assert [(type(e).__name__, e.node_type) for e in nodes] == [
        ("NodeStarted", "integer"), ("NodeCompleted", "integer")]
