"""Plain helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from invokeai_client import AsyncClient
from invokeai_client.fields import InvocationSchemas
from invokeai_client.types import TERMINAL_STATUSES
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

BUNDLED = InvocationSchemas.bundled()
"""The 6.14.2 invocation schemas shipped with the SDK (typed handles without a server)."""


def png(width: int = 16, height: int = 12, *, text: dict[str, str] | None = None) -> bytes:
    """A small PNG, optionally with text chunks (e.g. an embedded workflow)."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def edge(source: str, field: str, target: str, target_field: str) -> dict[str, Any]:
    """A graph edge from ``source.field`` to ``target.target_field`` (API form)."""
    return {
        "source": {"node_id": source, "field": field},
        "destination": {"node_id": target, "field": target_field},
    }


def example(name: str) -> dict[str, Any]:
    """A bundled example workflow's JSON."""
    data: dict[str, Any] = json.loads(examples.path(name).read_text())
    return data


def handle(data: dict[str, Any], typed: bool = True) -> WorkflowHandle:
    """An offline handle of workflow JSON, typed by the bundled schemas unless ``typed=False``."""
    return WorkflowHandle(WorkflowDefinition.from_dict(data), schemas=BUNDLED if typed else None)


def gui_node(node_type: str, values: dict[str, Any]) -> dict[str, Any]:
    """An invocation node as the GUI exports it (every input of the schema listed)."""
    schema = BUNDLED.get(node_type)
    assert schema is not None
    node_id = str(uuid.uuid4())
    inputs = {}
    for name, prop in schema.inputs.items():
        spec: dict[str, Any] = {"name": name, "label": "", "description": ""}
        if name in values:
            spec["value"] = values[name]
        elif prop.get("default") is not None and prop.get("input") != "connection":
            spec["value"] = prop["default"]
        inputs[name] = spec
    return {
        "id": node_id,
        "type": "invocation",
        "position": {"x": 0, "y": 0},
        "data": {
            "id": node_id,
            "type": node_type,
            "version": schema.version,
            "nodePack": "invokeai",
            "label": "",
            "notes": "",
            "isOpen": True,
            "isIntermediate": True,
            "useCache": True,
            "inputs": inputs,
        },
    }


def gui_workflow(
    name: str,
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
    exposed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A workflow file as the GUI saves it (v3 meta, no form) around ``nodes`` and ``edges``."""
    return {
        "name": name,
        "author": "",
        "description": "",
        "version": "1.0.0",
        "contact": "",
        "tags": "",
        "notes": "",
        "exposedFields": exposed or [],
        "meta": {"version": "3.0.0", "category": "user"},
        "nodes": nodes,
        "edges": edges or [],
    }


def node_of(workflow: Any, node_type: str) -> str:
    """The id of the first node of ``node_type`` in a (sync or async) workflow handle."""
    return next(n.id for n in workflow.definition.nodes.values() if n.type == node_type)


def outputs(item: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    """What the prepared copies of graph node ``node_id`` returned in a queue item (REST)."""
    session = item["session"]
    return [session["results"][p] for p in session["source_prepared_mapping"].get(node_id, [])]


async def queue_item(client: AsyncClient, item_id: int) -> dict[str, Any]:
    """A queue item as the server's REST API gives it (the source of truth)."""
    item: dict[str, Any] = await client._request(
        "GET", f"/api/v1/queue/{client.queue_id}/i/{item_id}"
    )
    return item


async def wait_items(
    client: AsyncClient, item_ids: list[int], timeout: float = 60
) -> dict[int, dict[str, Any]]:
    """Poll REST (the source of truth) until every item has finished; ``{id: item}``."""
    done: dict[int, dict[str, Any]] = {}

    async def poll() -> None:
        while len(done) < len(item_ids):
            for item_id in item_ids:
                if item_id not in done:
                    item = await queue_item(client, item_id)
                    if item["status"] in TERMINAL_STATUSES:
                        done[item_id] = item
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)
    return done


def items_ended(queue: Any) -> Callable[[], bool]:
    """A condition for ``double.queue.faults.enqueue_response_until``: every item of the
    double's queue has ended (so their events overtake the held enqueue answer)."""
    return lambda: bool(queue.items) and all(
        item.status in TERMINAL_STATUSES for item in queue.items.values()
    )


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"64k"``, ``"8m"``) mounted on the new folder ``mount`` for the
    block, a real disk a test may fill or remount read-only (the test is skipped where this
    process may not mount)."""
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
