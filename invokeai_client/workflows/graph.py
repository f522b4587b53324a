"""Workflow -> graph and batch, the way the InvokeAI GUI builds them ("Invoke" in the editor).

1. Nodes: invocation nodes only, minus batch and generator nodes (notes, connector and
   current_image nodes are UI-only). Each becomes ``{id, type, <inputs with a value>,
   use_cache, is_intermediate}``. Board inputs: ``"auto"`` (or empty) becomes the auto-add
   board given to the build, or nothing; ``"none"`` becomes nothing.
2. Edges: ``default`` edges between kept nodes (``collapsed`` edges are drawings); a connector
   source is followed back to the invocation output feeding it; duplicates are dropped.
3. Every input fed by an edge loses its literal value.
4. Batch and generator nodes become ``Batch.data``: per batch group, zipped (``Group N``) or
   each on its own (``None``, a cartesian product).
5. The workflow itself is attached (without its library id), so saved images embed it.

The functions here read a handle's values and never change the definition.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError, WorkflowError
from ..fields._base import UNSET
from .definition import (
    BATCH_NODE_TYPES,
    CONNECTOR_IN,
    GENERATOR_NODE_TYPES,
    WorkflowEdge,
    WorkflowNode,
)
from .generators import generator_values

if TYPE_CHECKING:
    from .handle import WorkflowHandle

log = logging.getLogger("invokeai_client")

BATCH_COLLECTION_INPUT = {
    "image_batch": "images",
    "string_batch": "strings",
    "integer_batch": "integers",
    "float_batch": "floats",
}
BATCH_OUTPUT_HANDLE = {"image_batch": "image"}
BATCH_GROUPS = ("None", "Group 1", "Group 2", "Group 3", "Group 4", "Group 5")

GraphEdge = dict[str, dict[str, str]]


def resolve_connector_source(
    connector_id: str, nodes: Mapping[str, WorkflowNode], edges: Sequence[WorkflowEdge]
) -> tuple[str, str] | None:
    """The invocation output ``(node_id, field)`` that feeds a connector (through chains of
    connectors), or None when nothing does (or the chain loops)."""
    seen: set[str] = set()
    current = connector_id
    while current not in seen:
        seen.add(current)
        incoming = next(
            (
                e
                for e in edges
                if e.type == "default"
                and e.target == current
                and e.target_handle == CONNECTOR_IN
                and e.source_handle is not None
            ),
            None,
        )
        if incoming is None or incoming.source_handle is None:
            return None
        source = nodes.get(incoming.source)
        if source is None:
            return None
        if source.is_invocation:
            return source.id, incoming.source_handle
        if source.kind != "connector":
            return None
        current = source.id
    return None


def data_edges(handle: WorkflowHandle) -> list[tuple[str, str, str, str]]:
    """The graph's edges as ``(source, source_field, target, target_field)``: default edges
    into executable nodes, sources resolved through connectors, kept sources only, deduped."""
    definition = handle.definition
    nodes = definition.nodes
    result: list[tuple[str, str, str, str]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for edge in definition.edges:
        if edge.type != "default" or edge.source_handle is None or edge.target_handle is None:
            continue
        target = nodes.get(edge.target)
        if target is None or not target.is_executable:
            continue
        source = nodes.get(edge.source)
        if source is None:
            continue
        if source.is_invocation:
            if not source.is_executable:
                continue
            resolved: tuple[str, str] | None = (source.id, edge.source_handle)
        elif source.kind == "connector":
            resolved = resolve_connector_source(source.id, nodes, definition.edges)
            if resolved is None or not nodes[resolved[0]].is_executable:
                continue
        else:
            continue
        if resolved is None:
            continue
        key = (resolved[0], resolved[1], edge.target, edge.target_handle)
        if key not in seen:
            seen.add(key)
            result.append(key)
    return result


def build_graph(
    handle: WorkflowHandle,
    *,
    board: str | None,
    batch_targets: set[tuple[str, str]],
    validate: bool,
) -> dict[str, Any]:
    """The API graph of the handle's workflow and values (see the module docstring)."""
    definition = handle.definition
    schemas = handle.schemas
    nodes: dict[str, dict[str, Any]] = {}
    for node in definition.nodes.values():
        if not node.is_executable:
            continue
        node_schema = schemas.get(node.type) if schemas is not None else None
        if schemas is not None and node_schema is None:
            raise WorkflowError(
                f"node {node.id!r} is a {node.type!r} node, which this server does not have "
                f"({schemas.source}); install its node pack or remove the node"
            )
        graph_node: dict[str, Any] = {"type": node.type, "id": node.id}
        for name in node.inputs:
            if (
                node_schema is not None
                and name not in node_schema.inputs
                and not node_schema.accepts_extra_inputs
            ):
                log.warning(
                    "workflow %r: node %s (%s) has an input %r that the server does not know; "
                    "it is left out of the graph (like the GUI does)",
                    definition.name,
                    node.id,
                    node.type,
                    name,
                )
                continue
            value = handle._api_value(node, name)
            if handle._is_board_input(node, name):
                if value is UNSET or value is None or value in ("", "auto"):
                    value = {"board_id": board} if board else UNSET
                elif value == "none":
                    value = UNSET
            if value is not UNSET:
                graph_node[name] = value
        options = handle._node_options.get(node.id, {})
        use_cache = options.get("use_cache", node.use_cache)
        if use_cache is None:
            use_cache = node_schema.use_cache if node_schema is not None else True
        graph_node["use_cache"] = use_cache
        graph_node["is_intermediate"] = options.get("is_intermediate", node.is_intermediate)
        nodes[node.id] = graph_node

    edges: list[GraphEdge] = []
    for source, source_field, target, target_field in data_edges(handle):
        edges.append(
            {
                "source": {"node_id": source, "field": source_field},
                "destination": {"node_id": target, "field": target_field},
            }
        )
        nodes[target].pop(target_field, None)

    if validate:
        problems = handle._graph_problems(nodes, edges, batch_targets)
        if problems:
            raise ValidationError(
                f"workflow {definition.name!r} cannot run as it is:\n  - "
                + "\n  - ".join(problems),
                input=problems[0].split(":", 1)[0],
                rule="runnable workflow",
            )
    return {"id": str(uuid.uuid4()), "nodes": nodes, "edges": edges}


def batch_node_data(handle: WorkflowHandle, graph: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """``Batch.data`` from the workflow's batch nodes, grouped like the GUI groups them."""
    definition = handle.definition
    nodes = definition.nodes
    batch_nodes = [n for n in nodes.values() if n.is_invocation and n.type in BATCH_NODE_TYPES]
    groups: dict[str, list[WorkflowNode]] = {}
    for node in batch_nodes:
        group = handle._api_value(node, "batch_group_id")
        group = group if isinstance(group, str) and group else "None"
        groups.setdefault(group, []).append(node)
    data: list[list[dict[str, Any]]] = []
    for group, members in groups.items():
        zipped: list[dict[str, Any]] = []
        for node in members:
            items = _batch_items(handle, node)
            where = f"batch node {node.title!r} ({node.id})"
            if not items:
                raise ValidationError(
                    f"{where} has no items to batch over", input=node.id, rule="non-empty batch"
                )
            handle_name = BATCH_OUTPUT_HANDLE.get(node.type, "value")
            targets = _batch_targets(handle, node.id, handle_name)
            if not targets:
                raise ValidationError(
                    f"{where} is not connected to any node input", input=node.id, rule="connected"
                )
            datums = [
                handle._batch_datum(target_node, target_field, items, where=where)
                for target_node, target_field in targets
            ]
            if group == "None":
                data.append(datums)
            else:
                zipped.extend(datums)
        if zipped:
            sizes = {len(d["items"]) for d in zipped}
            if len(sizes) > 1:
                raise ValidationError(
                    f"batch nodes of {group!r} must have the same number of items, got "
                    f"{sorted(sizes)}",
                    input=group,
                    rule="same size in a batch group",
                )
            data.append(zipped)
    return data


def _batch_targets(
    handle: WorkflowHandle, node_id: str, source_handle: str
) -> list[tuple[str, str]]:
    """Executable inputs fed by a batch node's output, through connectors if needed."""
    definition = handle.definition
    nodes = definition.nodes
    found: list[tuple[str, str]] = []
    frontier = [(node_id, source_handle)]
    seen: set[str] = set()
    while frontier:
        source, out = frontier.pop(0)
        for edge in definition.edges:
            if edge.type != "default" or edge.source != source or edge.source_handle != out:
                continue
            target = nodes.get(edge.target)
            if target is None or edge.target_handle is None:
                continue
            if target.kind == "connector" and target.id not in seen:
                seen.add(target.id)
                frontier.append((target.id, "out"))
            elif target.is_executable and (target.id, edge.target_handle) not in found:
                found.append((target.id, edge.target_handle))
    return found


def _batch_items(handle: WorkflowHandle, node: WorkflowNode) -> list[Any]:
    collection = BATCH_COLLECTION_INPUT[node.type]
    definition = handle.definition
    feeding = next(
        (
            e
            for e in definition.edges
            if e.type == "default" and e.target == node.id and e.target_handle == collection
        ),
        None,
    )
    if feeding is None:
        value = handle._api_value(node, collection)
        return list(value) if isinstance(value, list) else []
    source = definition.nodes.get(feeding.source)
    generator: WorkflowNode | None = None
    if source is not None and source.is_invocation:
        generator = source
    elif source is not None and source.kind == "connector":
        resolved = resolve_connector_source(source.id, definition.nodes, definition.edges)
        if resolved is not None:
            generator = definition.nodes[resolved[0]]
    if generator is None or generator.type not in GENERATOR_NODE_TYPES:
        raise ValidationError(
            f"batch node {node.title!r} ({node.id}) is fed by something that is not a "
            "generator node",
            input=node.id,
            rule="generator source",
        )
    if generator.id in handle._generated:
        return list(handle._generated[generator.id])
    spec = handle._api_value(generator, "generator")
    return generator_values(
        generator.type, spec, f"generator node {generator.title!r} ({generator.id})"
    )


def workflow_for_batch(handle: WorkflowHandle) -> dict[str, Any] | None:
    """The workflow JSON the GUI attaches to a batch (current values, no id), or None when it
    would not pass the server's workflow validation (the GUI also sends null then)."""
    workflow = handle.to_workflow_dict()
    workflow.pop("id", None)
    return workflow if _server_accepts_workflow(workflow) else None


REQUIRED_WORKFLOW_STRINGS = ("name", "author", "description", "version", "contact", "tags", "notes")


def _server_accepts_workflow(workflow: Mapping[str, Any]) -> bool:
    if not all(isinstance(workflow.get(key), str) for key in REQUIRED_WORKFLOW_STRINGS):
        return False
    if not isinstance(workflow.get("exposedFields"), list):
        return False
    meta = workflow.get("meta")
    if not isinstance(meta, Mapping) or meta.get("category", "user") not in ("user", "default"):
        return False
    form = workflow.get("form")
    if form is not None and not isinstance(form, Mapping):
        return False
    returns = sum(
        1
        for n in workflow.get("nodes", [])
        if isinstance(n, Mapping)
        and n.get("type") == "invocation"
        and isinstance(n.get("data"), Mapping)
        and n["data"].get("type") == "workflow_return"
    )
    return returns <= 1


def gui_workflow(handle: WorkflowHandle) -> dict[str, Any]:
    """The workflow JSON with the handle's values, shaped like the GUI serialises it."""
    source = handle.definition.to_dict()
    keys = (
        "name",
        "author",
        "description",
        "version",
        "contact",
        "tags",
        "notes",
        "exposedFields",
        "meta",
        "id",
        "form",
    )
    workflow: dict[str, Any] = {key: source[key] for key in keys if key in source}
    workflow["nodes"] = []
    workflow["edges"] = []
    for raw in source.get("nodes") or []:
        if not isinstance(raw, dict) or raw.get("type") not in ("invocation", "connector", "notes"):
            continue
        node = {
            "id": raw["id"],
            "type": raw["type"],
            "data": raw.get("data") or {},
            "position": raw.get("position") or {"x": 0, "y": 0},
        }
        if raw["type"] == "invocation":
            _apply_values(handle, node)
        workflow["nodes"].append(node)
    for raw in source.get("edges") or []:
        if not isinstance(raw, dict):
            continue
        if raw.get("type", "default") == "default":
            edge = {
                k: raw[k]
                for k in (
                    "id",
                    "type",
                    "source",
                    "target",
                    "sourceHandle",
                    "targetHandle",
                    "hidden",
                )
                if k in raw
            }
            edge.setdefault("type", "default")
            workflow["edges"].append(edge)
        elif raw.get("type") == "collapsed":
            workflow["edges"].append(
                {k: raw[k] for k in ("id", "type", "source", "target") if k in raw}
            )
    return workflow


def _apply_values(handle: WorkflowHandle, node: dict[str, Any]) -> None:
    node_id = node["id"]
    data = node["data"]
    options = handle._node_options.get(node_id, {})
    if "use_cache" in options:
        data["useCache"] = options["use_cache"]
    if "is_intermediate" in options:
        data["isIntermediate"] = options["is_intermediate"]
    inputs = data.get("inputs")
    if not isinstance(inputs, dict):
        return
    for name, spec in inputs.items():
        field = handle._fields.get((node_id, name))
        if field is None or not isinstance(spec, dict):
            continue
        value = field.to_api(handle._image_resolver(strict=False))
        if value is UNSET:
            spec.pop("value", None)
        else:
            spec["value"] = copy.deepcopy(value)


__all__ = [
    "BATCH_GROUPS",
    "batch_node_data",
    "build_graph",
    "data_edges",
    "gui_workflow",
    "resolve_connector_source",
    "workflow_for_batch",
]
