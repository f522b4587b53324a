"""``invokeai-client inputs``: a workflow's form inputs, their types and values.

Offline by default (typed by the bundled InvokeAI 6.14.2 node schemas); with ``--url`` the
server's own schemas type them, as ``run`` will.
"""

from __future__ import annotations

from typing import Any

from .. import AsyncClient
from ..fields import UNSET, InvocationSchemas
from ..workflows import WorkflowDefinition, WorkflowHandle
from ._console import Console
from ._plan import DEMO_SWEEP


async def load_inputs(
    definition: WorkflowDefinition, url: str | None, client_options: dict[str, Any]
) -> WorkflowHandle:
    """A handle typed by the server at ``url``, or by the bundled schemas when None."""
    if url is None:
        return WorkflowHandle(definition, schemas=InvocationSchemas.bundled())
    async with AsyncClient(url, **client_options) as client:
        return await client.workflows.load(definition)


def show_inputs(handle: WorkflowHandle, source: str, console: Console, *, demo: bool) -> None:
    """One line per input: index, label, type and rules, current value."""
    typed = handle.schemas.source if handle.schemas is not None else "types inferred"
    console.result(f"{handle.name} ({source}; types from {typed})")
    if not handle.inputs:
        console.result("  no form inputs (set node inputs as 'node_id.field_name')")
    width = max((len(i.label) for i in handle.inputs), default=0)
    for item in handle.inputs:
        value = "(none)" if item.value is UNSET else repr(item.value)
        flags = " required" if item.required else ""
        flags += " connected" if item.connected else ""
        console.result(
            f"  {item.index:>2}  {item.label:<{width}}  {item.field.describe()}{flags}"
            f"  = {value}"
        )
    if demo:
        shown = " ".join(f'--sweep "{s}"' for s in DEMO_SWEEP)
        console.result(f"the demo's default sweep: {shown}")
