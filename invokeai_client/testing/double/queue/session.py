"""One item's execution (InvokeAI's GraphExecutionState): exec nodes prepared with
iterate/collect expansion and scheduled the way the server does."""

from __future__ import annotations

import copy
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from ..nodes import NodeInputError

if TYPE_CHECKING:
    from .plan import Plan

MAX_WORKFLOW_CALL_DEPTH = 4


class Session:
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

    def __init__(self, plan: Plan, nodes: dict[str, dict[str, Any]], session_id: str) -> None:
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
                        merged = merge_ctx(ctx, self.ctx[parent_exec])
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
        return session_dict(
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



def session_dict(session_id: str, graph: dict[str, Any], **state: Any) -> dict[str, Any]:
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


def merge_ctx(
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

