"""``enqueue_batch`` validation as InvokeAI 6.14.2 does it, with its FastAPI-shaped 422s:
the request shape (pydantic), every node against its type, then the graph's own rules
(``Graph.validate_self``) and the batch data's node and field names."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from ..http import Detail, fastapi_errors, unprocessable, value_error
from ..nodes import NODE_SPECS, REAL_NODE_TYPES, kinds_compatible
from .plan import Plan
from .shapes import BatchIn, EnqueueBody

_BATCH_FIELD_RANK = {name: rank for rank, name in enumerate(BatchIn.model_fields)}


def _topological_order(
    keys: Iterable[str], edges: list[tuple[str, str, str, str]]
) -> list[str] | None:
    """Generations of a DAG (node order within one), or None when there is a cycle."""
    indegree = dict.fromkeys(keys, 0)
    successors: dict[str, list[str]] = {key: [] for key in indegree}
    for source, destination in dict.fromkeys((s, d) for s, _, d, _ in edges):
        successors[source].append(destination)
        indegree[destination] += 1
    generation = [key for key, degree in indegree.items() if degree == 0]
    order: list[str] = []
    while generation:
        order.extend(generation)
        following: list[str] = []
        for key in generation:
            for child in successors[key]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    following.append(child)
        generation = following
    return order if len(order) == len(indegree) else None


def _validate_node(key: str, raw: Any) -> tuple[dict[str, Any] | None, Detail]:
    """One graph node: the tagged union of InvokeAI's node types, then the node's fields."""
    loc: list[Any] = ["body", "batch", "graph", "nodes", key]
    if not isinstance(raw, dict):
        return None, [
            {
                "type": "model_attributes_type",
                "loc": loc,
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": raw,
            }
        ]
    tag = raw.get("type")
    if tag is None:
        return None, [
            {
                "type": "union_tag_not_found",
                "loc": loc,
                "msg": "Unable to extract tag using discriminator 'type'",
                "input": raw,
                "ctx": {"discriminator": "'type'"},
            }
        ]
    if not isinstance(tag, str) or tag not in REAL_NODE_TYPES:
        expected = ", ".join(f"'{name}'" for name in sorted(REAL_NODE_TYPES))
        return None, [
            {
                "type": "union_tag_invalid",
                "loc": loc,
                "msg": f"Input tag '{tag}' found using 'type' does not match any of the "
                f"expected tags: {expected}",
                "input": raw,
                "ctx": {"discriminator": "'type'", "tag": str(tag), "expected_tags": expected},
            }
        ]
    spec = NODE_SPECS.get(tag)
    if spec is None:  # a real node type the double cannot run: accepted as sent
        node = {
            "id": raw.get("id") if isinstance(raw.get("id"), str) else str(uuid.uuid4()),
            "is_intermediate": bool(raw.get("is_intermediate", False)),
            "use_cache": bool(raw.get("use_cache", True)),
        }
        node.update({k: v for k, v in raw.items() if k not in node and k != "type"})
        node["type"] = tag
        return node, []
    try:
        values = spec.model.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        return None, fastapi_errors(exc, (*loc, tag))
    if values["id"] is None:
        values["id"] = str(uuid.uuid4())
    detail = [
        value_error([*loc, tag, name], message, values.get(name))
        for name, message in (spec.check(values) if spec.check else [])
    ]
    return spec.serialize(values), detail


def _output_kind(node: dict[str, Any], field_name: str) -> str | None:
    spec = NODE_SPECS.get(node["type"])
    if spec is None:
        return "any"
    return spec.outputs.get(field_name)


def _input_kind(node: dict[str, Any], field_name: str) -> str | None:
    spec = NODE_SPECS.get(node["type"])
    if spec is None:
        return "any"
    found = spec.field_map.get(field_name)
    return found.kind if found is not None else None


def _graph_problem(
    nodes: dict[str, dict[str, Any]], edges: list[tuple[str, str, str, str]]
) -> tuple[str | None, list[str] | None]:
    """InvokeAI's Graph.validate_self, in its order; returns (problem, topological order)."""
    counts = Counter(node["id"] for node in nodes.values())
    duplicates = {node_id for node_id, count in counts.items() if count > 1}
    if duplicates:
        return f"Node ids must be unique, found duplicates {duplicates}", None
    for key, node in nodes.items():
        if key != node["id"]:
            return f"Node ids must match, got {key} and {node['id']}", None
    for source, source_field, destination, destination_field in edges:
        if source not in nodes:
            return f"Edge source node {source} does not exist in the graph", None
        if destination not in nodes:
            return f"Edge destination node {destination} does not exist in the graph", None
        if _output_kind(nodes[source], source_field) is None:
            return f"Edge source field {source_field} does not exist in node {source}", None
        if _input_kind(nodes[destination], destination_field) is None:
            return (
                f"Edge destination field {destination_field} does not exist in node "
                f"{destination}",
                None,
            )
    order = _topological_order(nodes, edges)
    if order is None:
        return "Graph contains cycles", None
    for source, source_field, destination, destination_field in edges:
        out_kind = _output_kind(nodes[source], source_field) or "any"
        in_kind = _input_kind(nodes[destination], destination_field) or "any"
        if not kinds_compatible(out_kind, in_kind):
            return (
                "Edge source and target types do not match "
                f"({source}.{source_field} -> {destination}.{destination_field})",
                None,
            )
    for key, node in nodes.items():
        if node["type"] == "iterate":
            inputs = [e for e in edges if e[2] == key and e[3] == "collection"]
            problem = None
            if not inputs:
                problem = "Iterator must have a collection input edge"
            elif len(inputs) > 1:
                problem = "Iterator may only have one input edge"
            elif not (_output_kind(nodes[inputs[0][0]], inputs[0][1]) or "").startswith(
                ("list[", "any")
            ):
                problem = "Iterator input must be a collection"
            if problem:
                return f"Invalid iterator node ({key}): {problem}", None
        if node["type"] == "collect" and not any(
            e[2] == key and e[3] in ("item", "collection") for e in edges
        ):
            return (
                f"Invalid collector node ({key}): Collector must have at least one item or "
                "collection input edge",
                None,
            )
    return None, order


def validate_enqueue(body: Any) -> tuple[Plan, bool]:
    """Validate an ``enqueue_batch`` body like InvokeAI (a 422 HTTP error if it is not);
    returns the prepared batch and ``prepend``."""
    detail: list[tuple[int, dict[str, Any]]] = []

    def add(entries: Detail) -> None:
        for entry in entries:
            loc = entry["loc"]
            if len(loc) > 1 and loc[1] == "batch":
                rank = _BATCH_FIELD_RANK.get(loc[2], -1) if len(loc) > 2 else -1
            else:
                rank = len(_BATCH_FIELD_RANK) if len(loc) > 1 else -1
            detail.append((rank, entry))

    shape: EnqueueBody | None = None
    try:
        shape = EnqueueBody.model_validate(body)
    except ValidationError as exc:
        add(fastapi_errors(exc, ("body",)))
    raw_graph = body.get("batch", {}).get("graph") if isinstance(body, dict) else None
    raw_batch = body.get("batch") if isinstance(body, dict) else None
    graph_ok = isinstance(raw_graph, dict) and not any(
        len(entry["loc"]) > 2 and entry["loc"][2] == "graph" for _, entry in detail
    )
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, str, str]] = []
    order: list[str] | None = None
    if graph_ok and isinstance(raw_graph, dict):
        node_detail: Detail = []
        for key, raw in (raw_graph.get("nodes") or {}).items():
            node, problems = _validate_node(key, raw)
            node_detail.extend(problems)
            if node is not None:
                nodes[key] = node
        add(node_detail)
        if not node_detail:
            edges = [
                (e["source"]["node_id"], e["source"]["field"],
                 e["destination"]["node_id"], e["destination"]["field"])
                for e in raw_graph.get("edges") or []
            ]
            problem, order = _graph_problem(nodes, edges)
            if problem is not None:
                add([value_error(["body", "batch", "graph"], problem, raw_graph)])
    if detail:
        detail.sort(key=lambda pair: pair[0])
        raise unprocessable([entry for _, entry in detail])
    assert shape is not None
    assert order is not None
    _check_data(shape.batch, nodes, raw_batch)
    return Plan(shape.batch, nodes, edges, order), shape.prepend


def _check_data(batch: BatchIn, nodes: dict[str, dict[str, Any]], raw_batch: Any) -> None:
    """The Batch model validator: every datum names a node of the graph and one of its
    fields. (Whether the values fit the fields is NOT checked, as on the real server.)"""
    for group in batch.data or ():
        for datum in group:
            node = nodes.get(datum.node_path)
            if node is None:
                problem = f"Node {datum.node_path} not found in graph"
            else:
                spec = NODE_SPECS.get(node["type"])
                known = {"id", "is_intermediate", "use_cache", "type"}
                if spec is None or datum.field_name in {*spec.field_map, *known}:
                    continue
                problem = f"Field {datum.field_name} not found in node {datum.node_path}"
            raise unprocessable([value_error(["body", "batch"], problem, raw_batch)])

