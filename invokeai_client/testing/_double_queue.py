"""The double's session queue: ``/api/v1/queue/{queue_id}/...`` and the processor behind it.

What it does, as InvokeAI 6.14.2 does it:

- ``enqueue_batch`` validates the batch like the server (FastAPI-shaped 422s), expands
  ``Batch.data`` (runs outermost, inner lists zipped, cartesian product across them), honours
  a client-chosen ``batch_id``, emits ``batch_enqueued`` inside the request and answers 200
  with ``item_ids`` in descending order. ``prepend`` gives the batch priority max+1.
- One worker runs items by priority DESC, item_id ASC (users take turns in multi-user mode),
  executing the graph's model-free nodes for real (see ``_double_nodes``), with iterate/collect
  expansion and InvokeAI's scheduling order, and emits the events in the server's order.
- Wrong-typed batch data is accepted and then stalls the processor, like the real server's
  bug (``cancel_by_batch_ids`` + ``prune`` recover), so clients can test their guard.
- :class:`QueueFaults` (``double.queue.faults``) injects the faults a real server shows only
  rarely: slow nodes, duplicated / late / shuffled / missing events, dropped sockets, lost
  enqueue answers, a stalled processor.

State stays lean for 10,000 items in flight: items share their batch's prepared graph, counts
are kept incrementally, the pending queue is a heap, and every event costs O(1).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import io
import itertools
import json
import random
import re
import time
import traceback
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread
from aiohttp import web
from engineio.packet import MESSAGE as _EIO_MESSAGE
from engineio.packet import Packet as _EioPacket
from pydantic import VERSION as PYDANTIC_VERSION
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ._double_nodes import (
    NODE_SPECS,
    REAL_NODE_TYPES,
    MissingInputException,
    NodeContext,
    NodeInputError,
    NodeSpec,
    UnsupportedNodeError,
    kinds_compatible,
)
from .double import DoubleImage, db_timestamp, error, is_owner_or_admin, json_response, missing

if TYPE_CHECKING:
    from .double import InvokeAIDouble

__all__ = ["InvocationCache", "QueueFaults", "SessionQueue", "install"]

TERMINAL = frozenset({"completed", "failed", "canceled"})
STATUSES = ("pending", "in_progress", "waiting", "completed", "failed", "canceled")
MAX_IDS_PER_REQUEST = 1000
MAX_WORKFLOW_CALL_DEPTH = 4
Detail = list[dict[str, Any]]


@dataclass
class QueueFaults:
    """Switches that make the double's queue and event stream misbehave on purpose.

    Set them on ``double.queue.faults`` at any time; they apply from the next event or item::

        double.queue.faults.node_delay = 0.05          # every node takes 50 ms
        double.queue.faults.duplicate_events = True    # every event twice, like InvokeAI 6.13
        double.queue.faults.drop_sockets_after_events = 100
    """

    node_delay: float = 0.0
    """Seconds each node takes (0: instant, the default; a knob for speed benchmarks)."""
    node_delays: dict[str, float] = field(default_factory=dict)
    """Per node type delays, e.g. ``{"img_blur": 0.5}``; override :attr:`node_delay`."""
    progress_steps: int = 0
    """Progress events per node (``percentage`` 0..1), like a denoising node; the node's delay
    is spread over them and a cancel stops the node at the next step (no complete event)."""
    progress_preview: tuple[int, int] | None = None
    """With :attr:`progress_steps`: send a ``(width, height)`` JPEG preview with each step,
    as InvokeAI does while denoising (needs Pillow)."""
    duplicate_events: bool = False
    """Send every queue and invocation event twice (InvokeAI 6.13 in single-user mode)."""
    event_delay: float = 0.0
    """Deliver every event this many seconds late (order kept)."""
    shuffle_item_events: bool = False
    """Hold each item's events until it ends, then send them in a random order."""
    seed: int | None = None
    """Seed of the shuffle (None: a fresh random order)."""
    silent_events: bool = False
    """Send no events at all: clients must poll REST to learn anything."""
    drop_sockets_after_events: int | None = None
    """Cut every socket after each N events sent."""
    drop_sockets_every: float | None = None
    """Cut every socket every N seconds while set."""
    lose_enqueue_responses: int = 0
    """The next N enqueues succeed (items are queued, events sent) but the answer is lost."""
    lost_enqueue_status: int | None = 502
    """How a lost enqueue answer looks: this HTTP status, or None to cut the connection."""
    enqueue_response_delay: float = 0.0
    """Hold each enqueue answer back this long after enqueuing (events arrive first)."""
    stall_processor: bool = False
    """The processor stays "started" but takes no item (a stuck server)."""


# -- request shapes (validated with pydantic, errors shaped like FastAPI's) ---------------


class _Conn(BaseModel):
    node_id: str
    field: str


class _Edge(BaseModel):
    source: _Conn
    destination: _Conn


class _Datum(BaseModel):
    node_path: str
    field_name: str
    items: list[Any] = Field(default_factory=list)


class _GraphIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    nodes: dict[str, Any] = Field(default_factory=dict)
    edges: list[_Edge] = Field(default_factory=list)


class _ExposedField(BaseModel):
    nodeId: str
    fieldName: str


_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


class _WorkflowMeta(BaseModel):
    version: str
    category: Literal["user", "default"]

    @field_validator("version")
    @classmethod
    def _semver(cls, version: str) -> str:
        if not _SEMVER.match(version):
            raise ValueError(f"Invalid workflow meta version: {version}")
        return version


class _Workflow(BaseModel):
    """A workflow as ``Batch.workflow`` takes it (the server's WorkflowWithoutID rules)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    author: str
    description: str
    version: str
    contact: str
    tags: str
    notes: str
    exposedFields: list[_ExposedField]
    meta: _WorkflowMeta
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    form: dict[str, Any] | None = None

    @field_validator("nodes")
    @classmethod
    def _one_return_node(cls, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        returns = sum(
            1
            for node in nodes
            if node.get("type") == "invocation"
            and isinstance(node.get("data"), dict)
            and node["data"].get("type") == "workflow_return"
        )
        if returns > 1:
            raise ValueError("A workflow may not contain more than one workflow_return node.")
        return nodes


class _BatchIn(BaseModel):
    batch_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    origin: str | None = None
    destination: str | None = None
    data: list[list[_Datum]] | None = None
    graph: _GraphIn
    workflow: _Workflow | None = None
    runs: int = Field(default=1, ge=1)

    @field_validator("data")
    @classmethod
    def _zipped_lengths(cls, data: list[list[_Datum]] | None) -> list[list[_Datum]] | None:
        for group in data or ():
            length = len(group[0].items) if group else 0
            if any(len(datum.items) != length for datum in group):
                raise ValueError("Zipped batch items must all have the same length")
        return data

    @field_validator("data")
    @classmethod
    def _item_types(cls, data: list[list[_Datum]] | None) -> list[list[_Datum]] | None:
        for group in data or ():
            for datum in group:
                if not datum.items or all(_is_number(item) for item in datum.items):
                    continue
                first = type(datum.items[0])
                if any(type(item) is not first for item in datum.items):
                    raise ValueError("All items in a batch must have the same type")
        return data

    @field_validator("data")
    @classmethod
    def _unique_fields(cls, data: list[list[_Datum]] | None) -> list[list[_Datum]] | None:
        seen: set[tuple[str, str]] = set()
        for group in data or ():
            for datum in group:
                pair = (datum.node_path, datum.field_name)
                if pair in seen:
                    raise ValueError("Each batch data must have unique node_id and field_name")
                seen.add(pair)
        return data


class _EnqueueBody(BaseModel):
    batch: _BatchIn
    prepend: bool = False


class _ItemIds(BaseModel):
    item_ids: list[int] = Field(max_length=MAX_IDS_PER_REQUEST)


class _BatchIds(BaseModel):
    batch_ids: list[str]


_INT_LIST: TypeAdapter[list[int]] = TypeAdapter(list[int])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_BATCH_FIELD_RANK = {name: rank for rank, name in enumerate(_BatchIn.model_fields)}


def _fastapi_errors(exc: ValidationError, prefix: tuple[Any, ...]) -> Detail:
    """Pydantic errors as FastAPI puts them in a 422 body (``ctx.error`` becomes ``{}``)."""
    detail: Detail = []
    for err in exc.errors(include_url=False):
        entry: dict[str, Any] = {
            "type": err["type"],
            "loc": [*prefix, *err["loc"]],
            "msg": err["msg"],
            # FastAPI reports the missing value itself (None), not the enclosing object.
            "input": None if err["type"] == "missing" else err.get("input"),
        }
        ctx = err.get("ctx")
        if ctx is not None:
            entry["ctx"] = {k: ({} if k == "error" else v) for k, v in ctx.items()}
        detail.append(entry)
    return detail


def _value_error(loc: list[Any], message: str, value: Any) -> dict[str, Any]:
    return {
        "type": "value_error",
        "loc": loc,
        "msg": f"Value error, {message}",
        "input": value,
        "ctx": {"error": {}},
    }


def _unprocessable(detail: Detail) -> web.HTTPException:
    return error(422, detail)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        message = getattr(exc, "msg", str(exc))
        raise _unprocessable(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": message},
                }
            ]
        ) from None


# -- the prepared batch: a validated graph, analysed once for all its items --------------


class _Plan:
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
        batch: _BatchIn,
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
        return None, _fastapi_errors(exc, (*loc, tag))
    if values["id"] is None:
        values["id"] = str(uuid.uuid4())
    detail = [
        _value_error([*loc, tag, name], message, values.get(name))
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


def validate_enqueue(body: Any) -> tuple[_Plan, bool]:
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

    shape: _EnqueueBody | None = None
    try:
        shape = _EnqueueBody.model_validate(body)
    except ValidationError as exc:
        add(_fastapi_errors(exc, ("body",)))
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
                add([_value_error(["body", "batch", "graph"], problem, raw_graph)])
    if detail:
        detail.sort(key=lambda pair: pair[0])
        raise _unprocessable([entry for _, entry in detail])
    assert shape is not None
    assert order is not None
    _check_data(shape.batch, nodes, raw_batch)
    return _Plan(shape.batch, nodes, edges, order), shape.prepend


def _check_data(batch: _BatchIn, nodes: dict[str, dict[str, Any]], raw_batch: Any) -> None:
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
            raise _unprocessable([_value_error(["body", "batch"], problem, raw_batch)])


# -- queue items and their sessions ------------------------------------------------------


class _Item:
    """One queue item; its graph is its batch's, with ``subs`` substituted."""

    __slots__ = (
        "batch_key",
        "cancel_seen",
        "completed_at",
        "created_at",
        "deleted",
        "device",
        "error_message",
        "error_traceback",
        "error_type",
        "field_values",
        "item_id",
        "plan",
        "poison",
        "priority",
        "queue_id",
        "retried_from_item_id",
        "session",
        "session_id",
        "started_at",
        "status",
        "status_sequence",
        "subs",
        "updated_at",
        "user_id",
    )

    def __init__(
        self,
        item_id: int,
        queue_id: str,
        plan: _Plan,
        field_values: list[dict[str, Any]],
        subs: tuple[tuple[str, str, Any], ...],
        poison: str | None,
        priority: int,
        user_id: str,
        created_at: str,
    ) -> None:
        self.item_id = item_id
        self.queue_id = queue_id
        self.plan = plan
        self.batch_key = (queue_id, plan.batch_id)
        self.field_values = field_values
        self.subs = subs
        self.poison = poison
        self.priority = priority
        self.user_id = user_id
        self.session_id = str(uuid.uuid4())
        self.status = "pending"
        self.status_sequence = 0
        self.created_at = created_at
        self.updated_at = created_at
        self.started_at: str | None = None
        self.completed_at: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.error_traceback: str | None = None
        self.retried_from_item_id: int | None = None
        self.device: str | None = None
        self.session: _Session | None = None
        self.deleted = False
        self.cancel_seen = False

    def nodes(self) -> dict[str, dict[str, Any]]:
        """The item's graph nodes: its batch's, with its batch data substituted."""
        if not self.subs:
            return self.plan.nodes
        nodes = dict(self.plan.nodes)
        for node_path, field_name, value in self.subs:
            nodes[node_path] = {**nodes[node_path], field_name: value}
        return nodes

    def graph_json(self) -> str:
        return json.dumps(self.plan.graph(self.nodes()), separators=(",", ":"))


class _Session:
    """A GraphExecutionState: prepares exec nodes (iterate/collect expansion) and schedules
    them the way InvokeAI does (drain one node class before switching, classes by name)."""

    __slots__ = (
        "active",
        "bindings",
        "children",
        "ctx",
        "cursor",
        "errors",
        "exec_graph_id",
        "exec_nodes",
        "executed",
        "executed_history",
        "executed_order",
        "id",
        "indegree",
        "nodes",
        "paths",
        "plan",
        "prepared_source",
        "queues",
        "remaining",
        "results",
        "source_prepared",
    )

    def __init__(self, plan: _Plan, nodes: dict[str, dict[str, Any]], session_id: str) -> None:
        self.id = session_id
        self.plan = plan
        self.nodes = nodes
        self.exec_graph_id = str(uuid.uuid4())
        self.exec_nodes: dict[str, dict[str, Any]] = {}
        self.prepared_source: dict[str, str] = {}
        self.source_prepared: dict[str, list[str]] = {}
        self.ctx: dict[str, tuple[tuple[str, int], ...]] = {}
        self.paths: dict[str, tuple[int, ...]] = {}
        self.cursor = 0
        self.bindings: dict[str, list[tuple[str, str, str]]] = {}
        self.children: dict[str, list[str]] = {}
        self.indegree: dict[str, int] = {}
        self.remaining: dict[str, int] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.executed: set[str] = set()
        self.executed_order: list[str] = []
        self.executed_history: list[str] = []
        self.queues: dict[str, deque[str]] = {}
        self.active: str | None = None

    # preparation

    def _preparable(self, key: str) -> bool:
        if key in self.source_prepared:
            return False
        if self.plan.nodes[key]["type"] == "iterate" and not all(
            parent in self.executed for parent, _, _ in self.plan.in_edges[key]
        ):
            return False
        return all(ancestor in self.executed for ancestor in self.plan.iter_ancestors[key])

    def prepare_one(self) -> bool:
        order = self.plan.order
        while self.cursor < len(order) and order[self.cursor] in self.source_prepared:
            self.cursor += 1  # everything before the cursor is prepared already
        for index in range(self.cursor, len(order)):
            key = order[index]
            if self._preparable(key):
                self._prepare(key)
                return True
        return False

    def _prepare(self, key: str) -> None:
        self.source_prepared[key] = []
        self.remaining[key] = 0
        node = self.nodes[key]
        in_edges = self.plan.in_edges[key]
        if node["type"] == "collect":
            groups: dict[tuple[tuple[str, int], ...], list[tuple[str, str, str]]] = {}
            for parent, source_field, field_name in in_edges:
                for parent_exec in self.source_prepared.get(parent, ()):
                    ctx = self.ctx[parent_exec]
                    group = ctx[:-1] if ctx and field_name == "item" else ctx
                    groups.setdefault(group, []).append((parent_exec, source_field, field_name))
            for ctx, binds in groups.items():
                self._create(key, node, ctx, binds)
        else:
            combos: list[tuple[tuple[tuple[str, int], ...], list[tuple[str, str, str]]]]
            combos = [((), [])]
            by_parent: dict[str, list[tuple[str, str]]] = {}
            for parent, source_field, field_name in in_edges:
                by_parent.setdefault(parent, []).append((source_field, field_name))
            for parent, pairs in by_parent.items():
                following = []
                for ctx, binds in combos:
                    for parent_exec in self.source_prepared.get(parent, ()):
                        merged = _merge_ctx(ctx, self.ctx[parent_exec])
                        if merged is not None:
                            following.append(
                                (merged, [*binds, *((parent_exec, sf, df) for sf, df in pairs)])
                            )
                combos = following
            for ctx, binds in combos:
                if node["type"] == "iterate":
                    collection: list[Any] = next(
                        (self.results[p][sf] for p, sf, df in binds if df == "collection"), []
                    )
                    for index in range(len(collection)):
                        self._create(key, node, (*ctx, (key, index)), binds, index)
                else:
                    self._create(key, node, ctx, binds)
        if not self.source_prepared[key]:  # nothing to run (an empty iteration)
            self.executed.add(key)
            self.executed_order.append(key)

    def _create(
        self,
        key: str,
        node: dict[str, Any],
        ctx: tuple[tuple[str, int], ...],
        binds: list[tuple[str, str, str]],
        index: int | None = None,
    ) -> None:
        exec_id = str(uuid.uuid4())
        exec_node = dict(node)
        exec_node["id"] = exec_id
        if index is not None:
            exec_node["index"] = index
        self.exec_nodes[exec_id] = exec_node
        self.prepared_source[exec_id] = key
        self.source_prepared[key].append(exec_id)
        self.remaining[key] += 1
        self.ctx[exec_id] = ctx
        self.paths[exec_id] = tuple(index for _, index in ctx) if ctx else ()
        self.bindings[exec_id] = binds
        self.children[exec_id] = []
        waiting = 0
        for parent_exec, _, _ in binds:
            self.children[parent_exec].append(exec_id)
            if parent_exec not in self.executed:
                waiting += 1
        self.indegree[exec_id] = waiting
        if waiting == 0:
            self._ready(exec_id)

    def path(self, exec_id: str) -> tuple[int, ...]:
        """The iteration indices of an exec node, outer to inner (``()`` outside iterate)."""
        return self.paths[exec_id]

    def _ready(self, exec_id: str) -> None:
        name = self.plan.classes[self.prepared_source[exec_id]]
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = deque()
        path = self.paths[exec_id]
        if not queue or self.paths[queue[-1]] <= path:
            queue.append(exec_id)
            return
        for position, queued in enumerate(queue):
            if self.path(queued) > path:
                queue.insert(position, exec_id)
                return
        queue.append(exec_id)

    def _next_ready(self) -> str | None:
        while True:
            if self.active is not None:
                queue = self.queues.get(self.active)
                if queue:
                    return queue.popleft()
                self.active = None
            candidates = sorted(name for name, queue in self.queues.items() if queue)
            if not candidates:
                return None
            self.active = candidates[0]

    def next(self) -> str | None:
        """The next exec node to run (its inputs filled in), preparing nodes as needed."""
        exec_id = self._next_ready()
        if exec_id is None and self.prepare_one():
            prepared = True
            while prepared:
                prepared = self.prepare_one()
                if exec_id is None:
                    exec_id = self._next_ready()
        if exec_id is not None:
            self._fill_inputs(exec_id)
        return exec_id

    def _fill_inputs(self, exec_id: str) -> None:
        node = self.exec_nodes[exec_id]
        binds = self.bindings[exec_id]
        if node["type"] == "iterate":
            for parent_exec, source_field, field_name in binds:
                if field_name == "collection":
                    node["collection"] = self.results[parent_exec][source_field]
            return
        if node["type"] == "collect":
            ordered = sorted(binds, key=lambda b: (self.path(b[0]), b[0]))
            collection: list[Any] = []
            for parent_exec, source_field, field_name in ordered:
                if field_name == "collection":
                    value = copy.deepcopy(self.results[parent_exec][source_field])
                    collection.extend(value if isinstance(value, list) else [value])
            collection.extend(
                copy.deepcopy(self.results[parent_exec][source_field])
                for parent_exec, source_field, field_name in ordered
                if field_name == "item"
            )
            node["collection"] = collection
            return
        for parent_exec, source_field, field_name in binds:
            value = self.results[parent_exec][source_field]
            node[field_name] = (
                copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            )
        spec = self.plan.specs[self.prepared_source[exec_id]]
        refused = dict(spec.check(node)) if spec is not None and spec.check else {}
        for _, _, field_name in binds:  # like InvokeAI: the first refused edge input
            if field_name in refused:
                raise NodeInputError(exec_id, field_name) from ValueError(
                    f"Value error, {refused[field_name]}"
                )

    def complete(self, exec_id: str, output: dict[str, Any]) -> None:
        self.results[exec_id] = output
        self.executed.add(exec_id)
        self.executed_order.append(exec_id)
        node = self.exec_nodes[exec_id]
        if node["type"] in ("iterate", "collect"):
            node["collection"] = []
        key = self.prepared_source[exec_id]
        self.remaining[key] -= 1
        if self.remaining[key] == 0:
            self.executed.add(key)
            self.executed_order.append(key)
            self.executed_history.append(key)
        for child in self.children[exec_id]:
            self.indegree[child] -= 1
            if self.indegree[child] == 0 and child not in self.executed:
                self._ready(child)

    def finish(self) -> None:
        """Drop what only running needs; a finished item keeps just what GET /i/ shows."""
        self.queues = {}
        self.ctx = {}
        self.children = {}
        self.remaining = {}
        self.executed = set()  # executed_order has it all
        self.active = None

    def to_dict(self) -> dict[str, Any]:
        edges = [
            {
                "source": {"node_id": parent_exec, "field": source_field},
                "destination": {"node_id": exec_id, "field": field_name},
            }
            for exec_id in self.exec_nodes
            for parent_exec, source_field, field_name in self.bindings[exec_id]
        ]
        return _session_dict(
            self.id,
            self.plan.graph(self.nodes),
            execution_graph={"id": self.exec_graph_id, "nodes": self.exec_nodes, "edges": edges},
            executed=list(self.executed_order),
            executed_history=list(self.executed_history),
            results=self.results,
            errors=self.errors,
            prepared_source_mapping=self.prepared_source,
            source_prepared_mapping=self.source_prepared,
            prepared_iteration_paths={
                exec_id: list(self.path(exec_id)) for exec_id in self.exec_nodes
            },
            indegree=self.indegree,
        )


def _item_event(item: _Item) -> dict[str, Any]:
    """What every event about one queue item starts with (InvokeAI's QueueItemEventBase)."""
    plan = item.plan
    return {
        "timestamp": int(time.time()),
        "queue_id": item.queue_id,
        "item_id": item.item_id,
        "batch_id": plan.batch_id,
        "origin": plan.origin,
        "destination": plan.destination,
        "user_id": item.user_id,
    }


def _session_dict(session_id: str, graph: dict[str, Any], **state: Any) -> dict[str, Any]:
    """A session as InvokeAI sends it: ``state`` over the fields of one that ran nothing."""
    return {
        "id": session_id,
        "graph": graph,
        "execution_graph": {"id": str(uuid.uuid4()), "nodes": {}, "edges": []},
        "executed": [],
        "executed_history": [],
        "results": {},
        "errors": {},
        "workflow_call_stack": [],
        "workflow_call_history": [],
        "max_workflow_call_depth": MAX_WORKFLOW_CALL_DEPTH,
        "prepared_source_mapping": {},
        "source_prepared_mapping": {},
        "prepared_iteration_paths": {},
        "ready_order": [],
        "indegree": {},
        **state,
    }


def _merge_ctx(
    a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, int], ...] | None:
    """Join two iteration contexts; None when they disagree on an iterator's index."""
    if not b or a == b:
        return a
    if not a:
        return b
    known = dict(a)
    merged = list(a)
    for iterator, index in b:
        if iterator in known:
            if known[iterator] != index:
                return None
        else:
            merged.append((iterator, index))
    return tuple(merged)


def _without_none(value: Any) -> Any:
    """What ``response_model_exclude_none`` does to a JSON value."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


# -- the queue ---------------------------------------------------------------------------


class InvocationCache:
    """InvokeAI's invocation cache: a node with ``use_cache`` whose inputs (everything but
    its id) equal an earlier node's gets that node's output without running (no progress, no
    new image). Least recently used entries go first; outputs naming a deleted image are
    dropped, as the server does when images are deleted."""

    def __init__(self, max_size: int = 512) -> None:
        self.max_size = max_size
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def lookup(self, node: dict[str, Any],
               images: Mapping[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """(key to save under or None, cached output or None) for a node about to run."""
        if not node.get("use_cache") or not self.enabled or self.max_size <= 0:
            return None, None
        key = json.dumps({k: v for k, v in node.items() if k != "id"}, sort_keys=True,
                         separators=(",", ":"))
        cached = self._entries.get(key)
        if cached is not None:
            image = cached.get("image")
            if isinstance(image, dict) and image.get("image_name") not in images:
                del self._entries[key]  # its image was deleted
                cached = None
        if cached is None:
            self.misses += 1
            return key, None
        self.hits += 1
        self._entries.move_to_end(key)
        return None, cached

    def save(self, key: str, output: dict[str, Any]) -> None:
        if not self.enabled or self.max_size <= 0 or key in self._entries:
            return
        while len(self._entries) >= self.max_size:
            self._entries.popitem(last=False)
        self._entries[key] = output

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def status(self) -> dict[str, Any]:
        return {
            "size": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "enabled": self.enabled and self.max_size > 0,
            "max_size": self.max_size,
        }


def _new_counts() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


class SessionQueue:
    """The session queue and processor of an :class:`InvokeAIDouble` (``double.queue``)."""

    def __init__(self, double: InvokeAIDouble) -> None:
        self.double = double
        self.faults = QueueFaults()
        self.cache = InvocationCache()
        """The invocation cache (on, 512 entries, like the server's default)."""
        self.max_queue_size = 10_000
        """Pending items a queue may hold; larger batches are cut (``enqueued < requested``)."""
        self.paused = False
        self._items: dict[int, _Item] = {}
        self._next_id = 1
        self._heaps: dict[str, list[tuple[int, int, _Item]]] = {}
        self._served: dict[str, int] = {}
        self._serve_count = itertools.count()
        self._queue_counts: dict[str, dict[str, int]] = {}
        self._batch_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._batch_items: dict[tuple[str, str], dict[int, _Item]] = {}
        self._user_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._dest_counts: dict[tuple[str, str | None], dict[str, int]] = {}
        self._pending_priorities: dict[str, Counter[int]] = {}
        self._running: _Item | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._held: dict[int, list[tuple[str, dict[str, Any], Any, tuple[str, ...]]]] = {}
        self._delayed: deque[tuple[float, str, dict[str, Any], Any, tuple[str, ...]]] = deque()
        self._delayed_wake = asyncio.Event()
        self._events_since_drop = 0
        self._rng = random.Random()
        self.events_sent = 0
        """Events handed to sockets so far (after faults), for tests and benchmarks."""

    # -- lifecycle ---------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        self._wake = asyncio.Event()
        self._delayed_wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._process(), name="invokeai-double-processor"),
            loop.create_task(self._deliver_delayed(), name="invokeai-double-late-events"),
            loop.create_task(self._drop_periodically(), name="invokeai-double-socket-drops"),
        ]

    async def _stop(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def wake(self) -> None:
        """Make the processor look for work now (after changing a fault switch)."""
        self._wake.set()

    async def flush_late_events(self) -> int:
        """Send every event held back by :attr:`QueueFaults.event_delay` now; returns how
        many (so a test can release late events exactly when it wants)."""
        count = 0
        while self._delayed:
            _, event, payload, room, skip = self._delayed.popleft()
            await self._send(event, payload, room, skip)
            if self.faults.duplicate_events:
                await self._send(event, payload, room, skip)
            count += 1
        return count

    # -- counting ----------------------------------------------------------------------

    def _count(self, item: _Item, status: str, delta: int) -> None:
        tables: tuple[tuple[dict[Any, dict[str, int]], Any], ...] = (
            (self._queue_counts, item.queue_id),
            (self._batch_counts, item.batch_key),
            (self._user_counts, (item.queue_id, item.user_id)),
            (self._dest_counts, (item.queue_id, item.plan.destination)),
        )
        for counts, key in tables:
            found = counts.get(key)
            if found is None:
                found = counts[key] = _new_counts()
            found[status] += delta
        if status == "pending":
            priorities = self._pending_priorities.setdefault(item.queue_id, Counter())
            priorities[item.priority] += delta
            if priorities[item.priority] <= 0:
                del priorities[item.priority]

    def _transition(self, item: _Item, status: str) -> bool:
        """Move ``item`` to ``status`` unless it is finished; True when it moved."""
        if item.status in TERMINAL or item.deleted:
            return False
        now = db_timestamp()
        self._count(item, item.status, -1)
        item.status = status
        item.status_sequence += 1
        item.updated_at = now
        if status in TERMINAL:
            item.completed_at = now
        self._count(item, status, 1)
        return True

    @staticmethod
    def _counts_dict(counts: dict[str, int] | None) -> dict[str, int]:
        counts = counts or _new_counts()
        return {**counts, "total": sum(counts.values())}

    def _batch_status(
        self, queue_id: str, batch_id: str, user_id: str | None = None
    ) -> dict[str, Any]:
        key = (queue_id, batch_id)
        items = self._batch_items.get(key, {})
        if user_id is None:
            counts = self._counts_dict(self._batch_counts.get(key))
        else:
            own = _new_counts()
            for item in items.values():
                if item.user_id == user_id:
                    own[item.status] += 1
            counts = self._counts_dict(own)
        first = next(iter(items.values()), None)
        return {
            "queue_id": queue_id,
            "batch_id": batch_id,
            "origin": first.plan.origin if first is not None else None,
            "destination": first.plan.destination if first is not None else None,
            **counts,
        }

    def _queue_status(
        self, queue_id: str, user_id: str | None, *, acting_user_id: str | None = None,
        is_admin: bool = False,
    ) -> dict[str, Any]:
        current = self._running
        if current is None or current.queue_id != queue_id or current.status != "in_progress":
            current = None
        owner = acting_user_id if acting_user_id is not None else user_id
        visible = current is not None and (is_admin or owner is None or current.user_id == owner)
        status: dict[str, Any] = {
            "queue_id": queue_id,
            "item_id": current.item_id if visible and current else None,
            "batch_id": current.plan.batch_id if visible and current else None,
            "session_id": current.session_id if visible and current else None,
            **self._counts_dict(self._queue_counts.get(queue_id)),
            "user_pending": None,
            "user_in_progress": None,
        }
        if user_id is not None:
            own = self._user_counts.get((queue_id, user_id)) or _new_counts()
            status["user_pending"] = own["pending"]
            status["user_in_progress"] = own["in_progress"]
        return status

    def _processor_status(self) -> dict[str, bool]:
        return {"is_started": not self.paused, "is_processing": self._running is not None}

    # -- events ------------------------------------------------------------------------

    async def _send(self, event: str, payload: dict[str, Any], room: Any,
                    skip: tuple[str, ...] = ()) -> None:
        """Hand one event to every socket in ``room``: encoded once, queued in order."""
        sio = self.double.sio
        try:
            recipients = [
                eio_sid for sid, eio_sid in sio.manager.get_participants("/", room)
                if sid not in skip
            ]
        except AttributeError:  # another python-socketio: the slow, sure way
            await sio.emit(event, payload, room=room, skip_sid=list(skip) or None)
            recipients = []
        if recipients:
            # A Socket.IO EVENT packet of namespace "/" is "2" + the JSON array: what
            # socketio.packet.Packet.encode makes, minus its costly walk looking for bytes.
            packet = _EioPacket(_EIO_MESSAGE, "2" + json.dumps([event, payload],
                                                               separators=(",", ":")))
            for eio_sid in recipients:
                await sio.eio.send_packet(eio_sid, packet)
        self.events_sent += 1
        limit = self.faults.drop_sockets_after_events
        if limit:
            self._events_since_drop += 1
            if self._events_since_drop >= limit:
                self._events_since_drop = 0
                await self.double.drop_sockets()

    async def _emit(self, event: str, payload: dict[str, Any], room: Any,
                    skip: tuple[str, ...] = (), item: _Item | None = None) -> None:
        faults = self.faults
        if faults.silent_events:
            return
        if item is not None and item.item_id in self._held:
            self._held[item.item_id].append((event, payload, room, skip))
            return
        if faults.event_delay > 0:
            due = asyncio.get_running_loop().time() + faults.event_delay
            self._delayed.append((due, event, payload, room, skip))
            self._delayed_wake.set()
            return
        await self._send(event, payload, room, skip)
        if faults.duplicate_events:
            await self._send(event, payload, room, skip)

    async def _deliver_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._delayed:
                self._delayed_wake.clear()
                await self._delayed_wake.wait()
                continue
            due, event, payload, room, skip = self._delayed[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._delayed.popleft()
            try:
                await self._send(event, payload, room, skip)
                if self.faults.duplicate_events:
                    await self._send(event, payload, room, skip)
            except Exception:  # a broken socket must not end late delivery
                continue

    async def _drop_periodically(self) -> None:
        while True:
            interval = self.faults.drop_sockets_every
            if not interval:
                await asyncio.sleep(0.05)
                continue
            await asyncio.sleep(interval)
            if self.faults.drop_sockets_every:
                await self.double.drop_sockets()

    async def _release_held(self, item: _Item) -> None:
        held = self._held.pop(item.item_id, None)
        if not held:
            return
        rng = random.Random(self.faults.seed) if self.faults.seed is not None else self._rng
        rng.shuffle(held)
        for event, payload, room, skip in held:
            await self._emit(event, payload, room, skip)

    def _admin_sids(self) -> set[str]:
        """Sockets in the admin room: every socket in single-user mode (all are "system")."""
        if not self.double.multiuser:
            return set(self.double.sockets)
        admins = {u["user_id"] for u in self.double.users.values() if u.get("is_admin")}
        return {sid for sid, info in self.double.sockets.items() if info["user_id"] in admins}

    def _owner_and_admin_sids(self, owners: Iterable[str]) -> tuple[str, ...]:
        owner_set = set(owners)
        sids = self._admin_sids()
        sids.update(
            sid for sid, info in self.double.sockets.items() if info["user_id"] in owner_set
        )
        return tuple(sids)

    async def _emit_private(self, event: str, payload: dict[str, Any], item: _Item,
                            progress: bool = False) -> None:
        room: Any = f"user:{item.user_id}" if progress else [f"user:{item.user_id}", "admin"]
        await self._emit(event, payload, room, item=item)

    async def _emit_status(self, item: _Item) -> None:
        payload: dict[str, Any] = {
            **_item_event(item),
            "status": item.status,
            "status_sequence": item.status_sequence,
            "error_type": item.error_type,
            "error_message": item.error_message,
            "error_traceback": item.error_traceback,
            "created_at": item.created_at,
            "updated_at": item.updated_at,
            "started_at": item.started_at,
            "completed_at": item.completed_at,
            "batch_status": self._batch_status(item.queue_id, item.plan.batch_id),
            "queue_status": self._queue_status(
                item.queue_id, item.user_id, acting_user_id=item.user_id
            ),
            "session_id": item.session_id,
        }
        await self._emit_private("queue_item_status_changed", payload, item)
        if self.double.multiuser:
            companion = {
                **payload,
                "user_id": "redacted",
                "batch_id": "redacted",
                "session_id": "redacted",
                "origin": None,
                "destination": None,
                "error_type": None,
                "error_message": None,
                "error_traceback": None,
                "batch_status": {
                    **payload["batch_status"], "batch_id": "redacted", "origin": None,
                    "destination": None,
                },
                "queue_status": {
                    **payload["queue_status"], "item_id": None, "session_id": None,
                    "batch_id": None, "user_pending": None, "user_in_progress": None,
                },
            }
            skip = self._owner_and_admin_sids([item.user_id])
            await self._emit("queue_item_status_changed", companion, item.queue_id, skip, item)

    async def _emit_bulk(self, event: str, queue_id: str, field_name: str,
                         by_user: dict[str, list[int]]) -> None:
        """queue_items_canceled / queue_items_retried, routed per owner like 6.14."""
        ids_field = f"{field_name}_item_ids"
        by_user_field = f"{field_name}_item_ids_by_user"
        base = {"timestamp": int(time.time()), "queue_id": queue_id}
        full = {
            **base,
            ids_field: [i for ids in by_user.values() for i in ids],
            "user_ids": list(by_user),
            by_user_field: by_user,
        }
        admin_sids = tuple(self._admin_sids())
        for user_id, ids in by_user.items():
            own = {**base, ids_field: ids, "user_ids": [user_id], by_user_field: {user_id: ids}}
            await self._emit(event, own, f"user:{user_id}", admin_sids)
        await self._emit(event, full, "admin")
        if self.double.multiuser:
            companion = {**base, ids_field: [], "user_ids": [], by_user_field: {}}
            await self._emit(event, companion, queue_id, self._owner_and_admin_sids(by_user))

    # -- enqueue -----------------------------------------------------------------------

    def _user_display(self, user_id: str) -> tuple[str | None, str | None]:
        if user_id == "system":
            return "System", "system@system.invokeai"
        for user in self.double.users.values():
            if user["user_id"] == user_id:
                return user.get("display_name"), user.get("email")
        return None, None

    def enqueue(self, queue_id: str, plan: _Plan, prepend: bool,
                user_id: str) -> dict[str, Any]:
        """Create the batch's items (see the module doc) and return the EnqueueBatchResult."""
        pending = self._queue_counts.get(queue_id, {}).get("pending", 0)
        room = max(self.max_queue_size - pending, 0)
        priority = 0
        if prepend:
            priorities = self._pending_priorities.get(queue_id)
            priority = (max(priorities) if priorities else 0) + 1
        sessions = _expand(plan)
        requested = _session_count(plan)
        created_at = db_timestamp()
        key = (queue_id, plan.batch_id)
        batch_items = self._batch_items.setdefault(key, {})
        heap = self._heaps.setdefault(user_id, [])
        new_ids: list[int] = []
        for field_values, subs, poison in itertools.islice(sessions, room):
            item = _Item(self._next_id, queue_id, plan, field_values, subs, poison, priority,
                         user_id, created_at)
            self._next_id += 1
            self._add(item, heap, batch_items)
            new_ids.append(item.item_id)
        new_ids.reverse()
        self._wake.set()
        return {
            "queue_id": queue_id,
            "enqueued": len(new_ids),
            "requested": requested,
            "batch": plan.echo(),
            "priority": priority,
            "item_ids": new_ids,
        }

    def _add(self, item: _Item, heap: list[tuple[int, int, _Item]],
             batch_items: dict[int, _Item]) -> None:
        self._items[item.item_id] = item
        batch_items[item.item_id] = item
        self._count(item, "pending", 1)
        heapq.heappush(heap, (-item.priority, item.item_id, item))

    async def _emit_batch_enqueued(self, queue_id: str, result: dict[str, Any],
                                   user_id: str) -> None:
        payload = {
            "timestamp": int(time.time()),
            "queue_id": queue_id,
            "batch_id": result["batch"]["batch_id"],
            "enqueued": result["enqueued"],
            "requested": result["requested"],
            "priority": result["priority"],
            "origin": result["batch"]["origin"],
            "user_id": user_id,
        }
        await self._emit("batch_enqueued", payload, [f"user:{user_id}", "admin"])
        if self.double.multiuser:
            companion = {**payload, "user_id": "redacted", "batch_id": "redacted", "origin": None}
            await self._emit("batch_enqueued", companion, queue_id,
                             self._owner_and_admin_sids([user_id]))

    # -- the processor -----------------------------------------------------------------

    def _dequeue(self) -> _Item | None:
        if self.paused or self.faults.stall_processor:
            return None
        best: tuple[int, int] | None = None
        best_user: str | None = None
        for user_id, heap in self._heaps.items():
            while heap and (heap[0][2].status != "pending" or heap[0][2].deleted):
                heapq.heappop(heap)
            if not heap:
                continue
            rank = (self._served.get(user_id, -1), heap[0][1])
            if best is None or rank < best:
                best, best_user = rank, user_id
        if best_user is None:
            return None
        item = self._heaps[best_user][0][2]
        if item.poison is not None:
            return None  # the real server fails to load it, again and again: the queue stalls
        heapq.heappop(self._heaps[best_user])
        self._served[best_user] = next(self._serve_count)
        return item

    async def _process(self) -> None:
        while True:
            item = self._dequeue()
            if item is None:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
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
                    if self._transition(item, "failed"):
                        await self._emit_status(item)
            finally:
                self._running = None
            await asyncio.sleep(0)  # let requests and socket writers run between items

    async def _run(self, item: _Item) -> None:
        self._running = item
        now = db_timestamp()
        item.started_at = now
        item.device = "cpu"
        self._transition(item, "in_progress")
        item.updated_at = now
        if self.faults.shuffle_item_events:
            self._held[item.item_id] = []
        try:
            await self._emit_status(item)
            session = _Session(item.plan, item.nodes(), item.session_id)
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
            if completed and self._transition(item, "completed"):
                await self._emit_status(item)
        finally:
            if item.session is not None:
                item.session.finish()
            await self._release_held(item)

    def _invocation_payload(self, item: _Item, session: _Session, exec_id: str) -> dict[str, Any]:
        node = session.exec_nodes[exec_id]
        if node["type"] in ("iterate", "collect"):
            node = {**node, "collection": []}
        return {
            **_item_event(item),
            "session_id": item.session_id,
            "invocation": node,
            "invocation_source_id": session.prepared_source[exec_id],
        }

    async def _run_node(self, item: _Item, session: _Session, exec_id: str) -> bool:
        node = session.exec_nodes[exec_id]
        spec = item.plan.specs[session.prepared_source[exec_id]]
        base = self._invocation_payload(item, session, exec_id)
        await self._emit_private("invocation_started", base, item)
        faults = self.faults
        delay = faults.node_delays.get(node["type"], faults.node_delay)
        saved: list[DoubleImage] = []
        try:
            if spec is None:
                raise UnsupportedNodeError(node["type"])
            for field_spec in spec.fields:
                if field_spec.required and node.get(field_spec.name) is None:
                    raise MissingInputException(spec.type, field_spec.name)
            key, result = self.cache.lookup(node, self.double.images)
            if result is None:
                result = await self._invoke(item, node, spec, base, delay, saved)
                if result is None:
                    return False  # canceled at a progress step
                if key is not None:
                    self.cache.save(key, result)
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
            await self._emit_private("invocation_progress", progress, item, True)
            self.double.images[record.image_name] = record
        session.complete(exec_id, result)
        await self._emit_private(
            "invocation_complete",
            {**base, "timestamp": int(time.time()), "result": result},
            item,
        )
        return True

    async def _invoke(self, item: _Item, node: dict[str, Any], spec: NodeSpec,
                      base: dict[str, Any], delay: float,
                      saved: list[DoubleImage]) -> dict[str, Any] | None:
        """Run the node's code (after its delay and progress steps); None when it stopped
        at a progress step because the item was canceled."""
        steps = self.faults.progress_steps
        if steps > 0:
            size = self.faults.progress_preview
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
                    "image": _preview(size, (step + 1) / steps) if size else None,
                    "device": None,
                }
                await self._emit_private("invocation_progress", progress, item, True)
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

    async def _fail(self, item: _Item, session: _Session, exec_id: str | None,
                    exc: BaseException) -> None:
        error_type = type(exc).__name__
        message = str(exc)
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if exec_id is not None:
            session.errors[exec_id] = f"{error_type}: {message}"
        if item.status not in TERMINAL and not item.deleted:
            item.error_type, item.error_message, item.error_traceback = error_type, message, trace
            if self._transition(item, "failed"):
                await self._emit_status(item)
        if exec_id is not None and not item.deleted:
            payload = {
                **self._invocation_payload(item, session, exec_id),
                "error_type": error_type,
                "error_message": message,
                "error_traceback": trace,
            }
            await self._emit_private("invocation_error", payload, item)

    # -- item views --------------------------------------------------------------------

    def _item_dict(self, item: _Item, viewer: dict[str, Any] | None = None) -> dict[str, Any]:
        plan = item.plan
        display_name, email = self._user_display(item.user_id)
        data: dict[str, Any] = {
            "item_id": item.item_id,
            "status": item.status,
            "status_sequence": item.status_sequence,
            "priority": item.priority,
            "batch_id": plan.batch_id,
            "origin": plan.origin,
            "destination": plan.destination,
            "session_id": item.session_id,
            "error_type": item.error_type,
            "error_message": item.error_message,
            "error_traceback": item.error_traceback,
            "created_at": item.created_at,
            "updated_at": item.updated_at,
            "started_at": item.started_at,
            "completed_at": item.completed_at,
            "queue_id": item.queue_id,
            "user_id": item.user_id,
            "user_display_name": display_name,
            "user_email": email,
            "field_values": item.field_values,
            "retried_from_item_id": item.retried_from_item_id,
            "device": item.device,
            "workflow_call_id": None,
            "parent_item_id": None,
            "parent_session_id": None,
            "root_item_id": None,
            "workflow_call_depth": None,
            "session": (
                item.session.to_dict() if item.session is not None
                else _session_dict(item.session_id, item.plan.graph(item.nodes()))
            ),
            "workflow": plan.workflow,
        }
        if viewer is not None and not is_owner_or_admin(viewer, item.user_id):
            data.update(
                user_id="redacted", user_display_name=None, user_email=None,
                batch_id="redacted", session_id="redacted", origin=None, destination=None,
                priority=0, field_values=None, retried_from_item_id=None, workflow=None,
                error_type=None, error_message=None, error_traceback=None,
                session=_session_dict(
                    "redacted", {"id": str(uuid.uuid4()), "nodes": {}, "edges": []}
                ),
            )
        return data

    def _summary(self, item: _Item, viewer: dict[str, Any]) -> dict[str, Any]:
        display_name, email = self._user_display(item.user_id)
        data: dict[str, Any] = {
            "item_id": item.item_id,
            "created_at": item.created_at,
            "status": item.status,
            "device": item.device,
            "started_at": item.started_at,
            "completed_at": item.completed_at,
            "origin": item.plan.origin,
            "destination": item.plan.destination,
            "batch_id": item.plan.batch_id,
            "user_id": item.user_id,
            "user_display_name": display_name,
            "user_email": email,
            "field_values": item.field_values,
            "parent_item_id": None,
        }
        if not is_owner_or_admin(viewer, item.user_id):
            data.update(user_id="redacted", user_display_name=None, user_email=None,
                        batch_id="redacted", origin=None, destination=None, field_values=None)
        return data

    # -- routes ------------------------------------------------------------------------

    def install_routes(self) -> None:
        prefix = "/api/v1/queue/{queue_id}"
        route = self.double.route
        route("POST", f"{prefix}/enqueue_batch", self._r_enqueue)
        route("GET", f"{prefix}/list_all", self._r_list_all)
        route("GET", f"{prefix}/item_ids", self._r_item_ids)
        route("POST", f"{prefix}/items_by_ids", self._r_items_by_ids)
        route("POST", f"{prefix}/item_summaries_by_ids", self._r_summaries)
        route("PUT", f"{prefix}/processor/resume", self._r_resume)
        route("PUT", f"{prefix}/processor/pause", self._r_pause)
        route("PUT", f"{prefix}/cancel_all_except_current", self._r_cancel_all_except_current)
        route("PUT", f"{prefix}/delete_all_except_current", self._r_delete_all_except_current)
        route("PUT", f"{prefix}/cancel_by_batch_ids", self._r_cancel_by_batch_ids)
        route("PUT", f"{prefix}/cancel_by_destination", self._r_cancel_by_destination)
        route("PUT", f"{prefix}/retry_items_by_id", self._r_retry)
        route("PUT", f"{prefix}/clear", self._r_clear)
        route("PUT", f"{prefix}/prune", self._r_prune)
        route("GET", f"{prefix}/current", self._r_current)
        route("GET", f"{prefix}/next", self._r_next)
        route("GET", f"{prefix}/status", self._r_status)
        route("GET", f"{prefix}/b/{{batch_id}}/status", self._r_batch_status)
        route("GET", f"{prefix}/i/{{item_id}}", self._r_get_item)
        route("DELETE", f"{prefix}/i/{{item_id}}", self._r_delete_item)
        route("PUT", f"{prefix}/i/{{item_id}}/cancel", self._r_cancel_item)
        route("GET", f"{prefix}/counts_by_destination", self._r_counts_by_destination)
        route("DELETE", f"{prefix}/d/{{destination}}", self._r_delete_by_destination)
        cache = "/api/v1/app/invocation_cache"
        route("GET", f"{cache}/status", self._r_cache_status)
        route("DELETE", cache, self._r_cache_clear)
        route("PUT", f"{cache}/enable", self._r_cache_enable)
        route("PUT", f"{cache}/disable", self._r_cache_disable)

    def _scope(self, user: dict[str, Any]) -> str | None:
        """The user id a bulk operation is limited to (None: everyone's items)."""
        return None if user.get("is_admin") else str(user["user_id"])

    def _item_or_404(self, request: web.Request) -> _Item:
        queue_id = request.match_info["queue_id"]
        raw = request.match_info["item_id"]
        try:
            item_id = int(raw)
        except ValueError:
            raise _unprocessable(
                [{"type": "int_parsing", "loc": ["path", "item_id"],
                  "msg": "Input should be a valid integer, unable to parse string as an integer",
                  "input": raw}]
            ) from None
        item = self._items.get(item_id)
        if item is None or item.queue_id != queue_id:
            raise error(404, f"Queue item with id {item_id} not found in queue {queue_id}")
        return item

    @staticmethod
    def _poison_error(item: _Item, what: str) -> web.HTTPException:
        return error(500, f"Unexpected error while {what}: {item.poison}")

    async def _r_enqueue(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        body = _parse_json(await request.read())
        plan, prepend = validate_enqueue(body)
        result = self.enqueue(queue_id, plan, prepend, str(user["user_id"]))
        await self._emit_batch_enqueued(queue_id, result, str(user["user_id"]))
        faults = self.faults
        if faults.enqueue_response_delay > 0:
            await asyncio.sleep(faults.enqueue_response_delay)
        if faults.lose_enqueue_responses > 0:
            faults.lose_enqueue_responses -= 1
            if faults.lost_enqueue_status is None:
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPInternalServerError()
            return json_response(
                {"detail": "injected fault: the batch was enqueued, the answer is lost"},
                faults.lost_enqueue_status,
            )
        return json_response(result)

    def _queue_items(self, queue_id: str) -> list[_Item]:
        return [item for item in self._items.values() if item.queue_id == queue_id]

    async def _r_list_all(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        destination = request.query.get("destination")
        items = [
            item for item in self._queue_items(request.match_info["queue_id"])
            if destination is None or item.plan.destination == destination
        ]
        items.sort(key=lambda item: (-item.priority, item.item_id))
        for item in items:
            if item.poison is not None:
                raise self._poison_error(item, "listing all queue items")
        return json_response([self._item_dict(item, user) for item in items])

    async def _r_item_ids(self, request: web.Request) -> web.StreamResponse:
        self.double.current_user(request)
        order_dir = request.query.get("order_dir", "DESC")
        if order_dir not in ("DESC", "ASC"):
            raise _unprocessable(
                [{"type": "enum", "loc": ["query", "order_dir"],
                  "msg": "Input should be 'DESC' or 'ASC'", "input": order_dir,
                  "ctx": {"expected": "'DESC' or 'ASC'"}}]
            )
        ids = [item.item_id for item in self._queue_items(request.match_info["queue_id"])]
        if order_dir == "DESC":
            ids.reverse()
        return json_response({"item_ids": ids, "total_count": len(ids)})

    async def _ids_body(self, request: web.Request) -> list[int]:
        body = _parse_json(await request.read())
        try:
            return _ItemIds.model_validate(body).item_ids
        except ValidationError as exc:
            raise _unprocessable(_fastapi_errors(exc, ("body",))) from None

    async def _r_items_by_ids(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        found = []
        for item_id in await self._ids_body(request):
            item = self._items.get(item_id)
            if item is not None and item.queue_id == queue_id and item.poison is None:
                found.append(self._item_dict(item, user))
        return json_response(found)

    async def _r_summaries(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        found = []
        for item_id in await self._ids_body(request):
            item = self._items.get(item_id)
            if item is not None and item.queue_id == queue_id:
                found.append(self._summary(item, user))
        return json_response(found)

    def _require_admin(self, request: web.Request) -> None:
        if not self.double.current_user(request).get("is_admin"):
            raise error(403, "Admin privileges required")

    async def _r_resume(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.paused = False
        self._wake.set()
        return json_response(self._processor_status())

    async def _r_pause(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.paused = True
        return json_response(self._processor_status())

    async def _cancel_pending(self, queue_id: str, items: Iterable[_Item],
                              *, delete: bool = False) -> tuple[int, dict[str, list[int]]]:
        """Bulk-cancel (or delete) pending/waiting items: no per-item events, one bulk event."""
        by_user: dict[str, list[int]] = {}
        for item in list(items):
            if item.status in ("pending", "waiting") and not item.deleted:
                by_user.setdefault(item.user_id, []).append(item.item_id)
                if delete:
                    self._delete(item)
                else:
                    self._transition(item, "canceled")
        count = sum(len(ids) for ids in by_user.values())
        if by_user:
            self._wake.set()  # a stalled processor may be waiting behind one of them
            await self._emit_bulk("queue_items_canceled", queue_id, "canceled", by_user)
        return count, by_user

    async def _cancel_running(self, matches: Any) -> int:
        item = self._running
        running = item is not None and item.status == "in_progress" and matches(item)
        if running and item is not None and self._transition(item, "canceled"):
            await self._emit_status(item)
            self._wake.set()
            return 1
        return 0

    def _current_chain(self) -> _Item | None:
        running = self._running
        return running if running is not None and running.status == "in_progress" else None

    async def _r_cancel_all_except_current(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [i for i in self._queue_items(queue_id) if scope is None or i.user_id == scope]
        count, _ = await self._cancel_pending(queue_id, items)
        return json_response({"canceled": count})

    async def _r_delete_all_except_current(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [i for i in self._queue_items(queue_id) if scope is None or i.user_id == scope]
        count, _ = await self._cancel_pending(queue_id, items, delete=True)
        return json_response({"deleted": count})

    async def _r_cancel_by_batch_ids(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        try:
            batch_ids = _BatchIds.model_validate(_parse_json(await request.read())).batch_ids
        except ValidationError as exc:
            raise _unprocessable(_fastapi_errors(exc, ("body",))) from None
        wanted = set(batch_ids)
        items = [
            item
            for batch_id in dict.fromkeys(batch_ids)
            for item in self._batch_items.get((queue_id, batch_id), {}).values()
            if scope is None or item.user_id == scope
        ]
        count, _ = await self._cancel_pending(queue_id, items)
        count += await self._cancel_running(
            lambda i: i.queue_id == queue_id and i.plan.batch_id in wanted
            and (scope is None or i.user_id == scope)
        )
        return json_response({"canceled": count})

    def _destination(self, request: web.Request) -> str:
        destination = request.query.get("destination")
        if destination is None:
            raise missing(["query", "destination"])
        return destination

    async def _r_cancel_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = self._destination(request)
        items = [
            i for i in self._queue_items(queue_id)
            if i.plan.destination == destination and (scope is None or i.user_id == scope)
        ]
        count, _ = await self._cancel_pending(queue_id, items)
        count += await self._cancel_running(
            lambda i: i.queue_id == queue_id and i.plan.destination == destination
            and (scope is None or i.user_id == scope)
        )
        return json_response({"canceled": count})

    async def _r_delete_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = request.match_info["destination"]

        def matches(item: _Item) -> bool:
            return (item.queue_id == queue_id and item.plan.destination == destination
                    and (scope is None or item.user_id == scope))

        canceled_running = self._running if self._current_chain() else None
        await self._cancel_running(matches)
        items = [i for i in self._queue_items(queue_id) if matches(i)]
        by_user: dict[str, list[int]] = {}
        for item in items:
            if item is not canceled_running:
                by_user.setdefault(item.user_id, []).append(item.item_id)
            self._delete(item)
        if by_user:
            await self._emit_bulk("queue_items_canceled", queue_id, "canceled", by_user)
        return json_response({"deleted": len(items)})

    async def _r_retry(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue_id = request.match_info["queue_id"]
        body = _parse_json(await request.read())
        try:
            item_ids = _INT_LIST.validate_python(body)
        except ValidationError as exc:
            raise _unprocessable(_fastapi_errors(exc, ("body",))) from None
        originals: list[_Item] = []
        for item_id in item_ids:
            item = self._items.get(item_id)
            if item is None:
                continue
            if item.queue_id != queue_id:
                raise error(404, f"Queue item with id {item_id} not found in queue {queue_id}")
            if not is_owner_or_admin(user, item.user_id):
                raise error(403, f"You do not have permission to retry queue item {item_id}")
            originals.append(item)
        retried: list[int] = []
        by_user: dict[str, list[int]] = {}
        seen: set[int] = set()
        room = max(self.max_queue_size - self._queue_counts.get(queue_id, {}).get("pending", 0), 0)
        for original in originals:
            if room <= 0:
                break
            if original.status not in ("failed", "canceled") or original.item_id in seen:
                continue
            seen.add(original.item_id)
            new = _Item(self._next_id, queue_id, original.plan, original.field_values,
                        original.subs, original.poison, original.priority, original.user_id,
                        db_timestamp())
            self._next_id += 1
            new.retried_from_item_id = original.retried_from_item_id or original.item_id
            self._add(new, self._heaps.setdefault(new.user_id, []),
                      self._batch_items.setdefault(new.batch_key, {}))
            retried.append(original.item_id)
            by_user.setdefault(original.user_id, []).append(original.item_id)
            room -= 1
        self._wake.set()
        await self._emit_bulk("queue_items_retried", queue_id, "retried", by_user)
        return json_response({"queue_id": queue_id, "retried_item_ids": retried})

    def _delete(self, item: _Item) -> None:
        if item.deleted:
            return
        self._count(item, item.status, -1)
        item.deleted = True
        self._items.pop(item.item_id, None)
        batch_items = self._batch_items.get(item.batch_key)
        if batch_items is not None:
            batch_items.pop(item.item_id, None)
            if not batch_items:
                del self._batch_items[item.batch_key]

    async def _r_clear(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        await self._cancel_running(
            lambda i: i.queue_id == queue_id and (scope is None or i.user_id == scope)
        )
        items = [i for i in self._queue_items(queue_id) if scope is None or i.user_id == scope]
        for item in items:
            self._delete(item)
        payload = {"timestamp": int(time.time()), "queue_id": queue_id, "user_id": scope}
        if scope is None:
            await self._emit("queue_cleared", payload, queue_id)
        else:
            await self._emit("queue_cleared", payload, [f"user:{scope}", "admin"])
            await self._emit("queue_cleared", {**payload, "user_id": "redacted"}, queue_id,
                             self._owner_and_admin_sids([scope]))
        return json_response({"deleted": len(items)})

    async def _r_prune(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        items = [
            i for i in self._queue_items(queue_id)
            if i.status in TERMINAL and (scope is None or i.user_id == scope)
        ]
        for item in items:
            self._delete(item)
        return json_response({"deleted": len(items)})

    async def _r_current(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        item = self._current_chain()
        if item is None or item.queue_id != request.match_info["queue_id"]:
            return json_response(None)
        return json_response(self._item_dict(item, user))

    async def _r_next(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        pending = [
            i for i in self._queue_items(request.match_info["queue_id"]) if i.status == "pending"
        ]
        if not pending:
            return json_response(None)
        item = min(pending, key=lambda i: (-i.priority, i.item_id))
        return json_response(self._item_dict(item, user))

    async def _r_status(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        queue = self._queue_status(
            request.match_info["queue_id"], str(user["user_id"]),
            is_admin=bool(user.get("is_admin")),
        )
        return json_response({"queue": queue, "processor": self._processor_status()})

    async def _r_batch_status(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        return json_response(
            self._batch_status(request.match_info["queue_id"], request.match_info["batch_id"],
                               scope)
        )

    async def _r_get_item(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        item = self._item_or_404(request)
        if item.poison is not None:
            raise self._poison_error(item, "fetching queue item")
        return json_response(_without_none(self._item_dict(item, user)))

    async def _r_delete_item(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        item = self._item_or_404(request)
        if item.poison is not None:
            raise self._poison_error(item, "deleting queue item")
        if not is_owner_or_admin(user, item.user_id):
            raise error(403, "You do not have permission to delete this queue item")
        if item.status not in TERMINAL and self._transition(item, "canceled"):
            await self._emit_status(item)
        self._delete(item)
        return json_response(None)

    async def _r_cancel_item(self, request: web.Request) -> web.StreamResponse:
        user = self.double.current_user(request)
        item = self._item_or_404(request)
        if item.poison is not None:
            raise self._poison_error(item, "canceling queue item")
        if not is_owner_or_admin(user, item.user_id):
            raise error(403, "You do not have permission to cancel this queue item")
        if self._transition(item, "canceled"):
            await self._emit_status(item)
            self._wake.set()
        return json_response(self._item_dict(item, user))

    async def _r_cache_status(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        return json_response(self.cache.status())

    async def _r_cache_clear(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.cache.clear()
        return json_response(None)

    async def _r_cache_enable(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.cache.enabled = True
        return json_response(None)

    async def _r_cache_disable(self, request: web.Request) -> web.StreamResponse:
        self._require_admin(request)
        self.cache.enabled = False
        return json_response(None)

    async def _r_counts_by_destination(self, request: web.Request) -> web.StreamResponse:
        scope = self._scope(self.double.current_user(request))
        queue_id = request.match_info["queue_id"]
        destination = self._destination(request)
        if scope is None:
            counts = self._counts_dict(self._dest_counts.get((queue_id, destination)))
        else:
            own = _new_counts()
            for item in self._queue_items(queue_id):
                if item.plan.destination == destination and item.user_id == scope:
                    own[item.status] += 1
            counts = self._counts_dict(own)
        return json_response({"queue_id": queue_id, "destination": destination, **counts})


# -- batch data expansion ----------------------------------------------------------------


def _session_count(plan: _Plan) -> int:
    data = plan.data_echo
    if not data:
        return plan.runs
    count = plan.runs
    for group in data:
        count *= len(group[0]["items"]) if group else 0
    return count


def _expand(
    plan: _Plan,
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
    plan: _Plan, nfv: dict[str, Any]
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


def install(double: InvokeAIDouble) -> None:
    """Add the session queue to ``double`` (as ``double.queue``) with its routes."""
    queue = SessionQueue(double)
    double.queue = queue
    queue.install_routes()
    double.app.on_startup.append(queue._start)
    double.app.on_cleanup.append(queue._stop)


def _preview(size: tuple[int, int], done: float) -> dict[str, Any]:
    """A progress preview as InvokeAI sends it: a JPEG data URL, brighter as ``done`` grows."""
    import base64

    from PIL import Image

    width, height = size
    level = round(255 * done)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (level, level, level)).save(buffer, format="JPEG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"width": width, "height": height, "dataURL": f"data:image/jpeg;base64,{data}"}
