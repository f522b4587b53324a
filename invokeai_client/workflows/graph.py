"""Deprecated: the graph stage moved to :mod:`invokeai_client.workflows.compile` (and its
private helper modules). Its 0.1.0 functions, which take a handle, keep working here; a
handle's own ``build_graph()``, ``compile()`` and ``to_workflow_dict()`` are the way to call
them now."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from .._deprecated import alias_of
from ..types.batch import JSONText
from . import _sweeps
from . import compile as _new
from ._topology import BATCH_GROUPS, DataEdge, resolve_connector_source, topology_of
from .handle import WorkflowHandle

__all__ = [
    "BATCH_GROUPS",
    "batch_node_data",
    "build_graph",
    "data_edges",
    "gui_workflow",
    "resolve_connector_source",
    "workflow_for_batch",
]


def data_edges(handle: WorkflowHandle) -> list[DataEdge]:
    """The graph's edges as ``(source, source_field, target, target_field)``."""
    return list(topology_of(handle.definition).data_edges)


def build_graph(
    handle: WorkflowHandle,
    *,
    board: str | None = None,
    batch_targets: AbstractSet[tuple[str, str]] = frozenset(),
    validate: bool = True,
) -> dict[str, Any]:
    """The API graph of the handle's workflow and values; ``batch_targets`` are inputs batch
    data sets (they need no value)."""
    graph = handle.build_graph(board=board, validate=validate and not batch_targets)
    if validate and batch_targets:  # local images were resolved by the build, or it raised
        form = handle.form
        _new.refuse(form.definition, _new.problems(
            form.definition, form.values, form.schemas, graph["nodes"], graph["edges"],
            set(batch_targets), _new.DRY_RUN_UPLOADS,
        ))
    return graph


def batch_node_data(
    handle: WorkflowHandle, graph: Mapping[str, Any] | None = None
) -> list[list[dict[str, Any]]]:
    """``Batch.data`` from the workflow's batch nodes, grouped like the GUI groups them."""
    form = handle.form
    return _sweeps.batch_node_data(form.definition, form.values, form.schemas,
                                  _new.image_resolver({}, strict=True))


def gui_workflow(handle: WorkflowHandle) -> dict[str, Any]:
    """The workflow JSON with the handle's values, shaped like the GUI serialises it."""
    return handle.to_workflow_dict()


def workflow_for_batch(handle: WorkflowHandle) -> dict[str, Any] | None:
    """The workflow JSON the GUI attaches to a batch, or None when the server would refuse it."""
    workflow = handle.compile(validate=False).batch.workflow
    return workflow.value() if isinstance(workflow, JSONText) else workflow


alias_of(_new, globals())
