"""Reliability, classes 3 and 4 (the socket side): whatever frames the event stream carries,
the client keeps hearing the events that follow, with bounded memory.

InvokeAI never sends binary socket.io frames; a server that does (a header claiming
9,999,999,999 attachments, then megabytes of binary frames) used to make python-socketio hold
every frame as an attachment and read every later frame, events included, as one more: the
client went deaf until the next reconnect. A frame over the WebSocket message limit costs a
reconnect, never the memory of the frame.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from invokeai_client.types.wire_events import ServerEvent

from .conftest import Peer, wait_until

pytestmark = pytest.mark.anyio


def _marker() -> dict[str, Any]:
    return {"queue_id": "default", "batch_id": str(uuid.uuid4()), "item_id": 1,
            "status": "pending"}


async def test_binary_frames_are_dropped_and_later_events_still_arrive(double: Peer) -> None:
    server = double.double
    assert server is not None
    async with double.client() as client:
        heard: list[ServerEvent] = []
        client.context.router.add_listener(heard.append)
        (sid,) = list(server.sio.eio.sockets)
        await server.sio.eio.send(
            sid, '59999999999-["queue_item_status_changed",{"_placeholder":true,"num":0}]'
        )
        for _ in range(20):
            await server.sio.eio.send(sid, b"\x00" * 1_000_000)
        marker = _marker()
        await server.emit("queue_item_status_changed", marker)
        await wait_until(
            lambda: any(getattr(e, "batch_id", None) == marker["batch_id"] for e in heard), 30
        )
        held = getattr(client.context.stream._sio, "_binary_packet", None)
        assert held is None  # no attachment is kept


async def test_a_frame_over_the_message_limit_costs_a_reconnect_not_memory(
    double: Peer,
) -> None:
    server = double.double
    assert server is not None
    async with double.client() as client:
        stream = client.context.stream
        heard: list[ServerEvent] = []
        client.context.router.add_listener(heard.append)
        await server.emit("queue_item_status_changed", {**_marker(), "blob": "x" * 8_000_000})
        await wait_until(lambda: stream.connect_count >= 2, 60)  # dropped, then back
        assert await stream.wait_connected(60)
        marker = _marker()
        await server.emit("queue_item_status_changed", marker)
        await wait_until(
            lambda: any(getattr(e, "batch_id", None) == marker["batch_id"] for e in heard), 30
        )
    assert not any(len(str(getattr(e, "data", ""))) > 1_000_000 for e in heard)
