"""A validated batch, analysed once for all its items (:class:`Plan`), and the expansion of
its ``data`` into sessions (runs outermost, inner lists zipped, cartesian product across)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import VERSION as PYDANTIC_VERSION
from pydantic import ValidationError

from ..nodes import NODE_SPECS, NodeSpec

if TYPE_CHECKING:
    from .shapes import BatchIn


class Plan:
    """One enqueued batch: its normalized graph and what every session of it shares."""

    __slots__ = (
        "batch_id",
        "classes",
        "data_echo",
        "destination",
        "edges",
        "graph_id",
        "in_edges",
        "iter_ancestors",
        "nodes",
        "order",
        "origin",
        "runs",
        "specs",
        "workflow",
        "workflow_json",
    )

    def __init__(
        self,
        batch: BatchIn,
        nodes: dict[str, dict[str, Any]],
        edges: list[tuple[str, str, str, str]],
        order: list[str],
    ) -> None:
        self.batch_id = batch.batch_id
        self.origin = batch.origin
        self.destination = batch.destination
        self.runs = batch.runs
        self.graph_id = batch.graph.id or str(uuid.uuid4())
        self.nodes = nodes
        self.edges = [
            {"source": {"node_id": s, "field": sf}, "destination": {"node_id": d, "field": df}}
            for s, sf, d, df in edges
        ]
        self.data_echo = (
            None
            if batch.data is None
            else [[datum.model_dump() for datum in group] for group in batch.data]
        )
        self.workflow = batch.workflow.model_dump() if batch.workflow is not None else None
        self.workflow_json = json.dumps(self.workflow) if self.workflow is not None else None
        self.specs: dict[str, NodeSpec | None] = {
            key: NODE_SPECS.get(node["type"]) for key, node in nodes.items()
        }
        self.classes = {
            key: spec.class_name if spec is not None else node["type"]
            for (key, node), spec in zip(nodes.items(), self.specs.values(), strict=True)
        }
        self.in_edges: dict[str, list[tuple[str, str, str]]] = {key: [] for key in nodes}
        for s, sf, d, df in edges:
            self.in_edges[d].append((s, sf, df))
        self.order = order
        self.iter_ancestors: dict[str, frozenset[str]] = {}
        for key in order:
            ancestors: set[str] = set()
            for parent, _, _ in self.in_edges[key]:
                ancestors |= self.iter_ancestors[parent]
                if nodes[parent]["type"] == "iterate":
                    ancestors.add(parent)
            self.iter_ancestors[key] = frozenset(ancestors)

    def graph(self, nodes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"id": self.graph_id, "nodes": nodes or self.nodes, "edges": self.edges}

    def echo(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "origin": self.origin,
            "destination": self.destination,
            "data": self.data_echo,
            "graph": self.graph(),
            "workflow": self.workflow,
            "runs": self.runs,
        }


def session_count(plan: Plan) -> int:
    data = plan.data_echo
    if not data:
        return plan.runs
    count = plan.runs
    for group in data:
        count *= len(group[0]["items"]) if group else 0
    return count


def expand(
    plan: Plan,
) -> Iterator[tuple[list[dict[str, Any]], tuple[tuple[str, str, Any], ...], str | None]]:
    """The sessions of a batch: runs outermost, each inner list zipped, the cartesian
    product across inner lists. Yields (field_values, substitutions, poison) per session."""
    data = plan.data_echo
    empty: list[dict[str, Any]] = []
    if not data:
        for _ in range(plan.runs):
            yield empty, (), None
        return
    checked: dict[int, tuple[tuple[str, str, Any], str | None]] = {}
    groups: list[list[tuple[dict[str, Any], ...]]] = []
    for group in data:
        columns = [
            [
                {"node_path": datum["node_path"], "field_name": datum["field_name"],
                 "value": value}
                for value in datum["items"]
            ]
            for datum in group
        ]
        groups.append(list(zip(*columns, strict=True)))
        for column in columns:
            for nfv in column:
                checked[id(nfv)] = _substitution(plan, nfv)
    for _ in range(plan.runs):
        for combo in itertools.product(*groups):
            field_values = [nfv for position in combo for nfv in position]
            subs = tuple(checked[id(nfv)][0] for nfv in field_values)
            poison = next(
                (checked[id(nfv)][1] for nfv in field_values if checked[id(nfv)][1]), None
            )
            yield field_values, subs, poison


def _substitution(
    plan: Plan, nfv: dict[str, Any]
) -> tuple[tuple[str, str, Any], str | None]:
    """A batch value as the server later loads it into the node, or the error it gets."""
    node_path, field_name, value = nfv["node_path"], nfv["field_name"], nfv["value"]
    spec = plan.specs.get(node_path)
    field_spec = spec.field_map.get(field_name) if spec is not None else None
    if field_spec is None:
        return (node_path, field_name, value), None
    try:
        coerced = field_spec.adapter.validate_python(value)
        return (node_path, field_name, field_spec.adapter.dump_python(coerced, mode="json")), None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        version = ".".join(PYDANTIC_VERSION.split(".")[:2])
        node_type = plan.nodes[node_path]["type"]
        where = ".".join(str(part) for part in ("graph", "nodes", node_path, node_type,
                                                field_name, *err["loc"]))
        poison = (
            f"1 validation error for GraphExecutionState\n{where}\n  {err['msg']} "
            f"[type={err['type']}, input_value={value!r}, input_type={type(value).__name__}]\n"
            f"    For further information visit https://errors.pydantic.dev/{version}/v/"
            f"{err['type']}"
        )
        return (node_path, field_name, value), poison

