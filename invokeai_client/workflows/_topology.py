"""The shape of a workflow's graph: which edges carry data, what feeds what (pure, cached).

Everything here depends only on the immutable :class:`WorkflowDefinition`, so it is computed
once per definition (:func:`topology_of`) and shared by every handle of it:

- data edges: ``default`` edges into executable nodes, sources followed back through
  connector nodes to the invocation output feeding them, deduplicated (``collapsed`` edges
  are drawings);
- batch targets: the node inputs a batch node's output feeds (through connectors);
- fed inputs: every input fed by an edge or by a batch node, and what feeds it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .definition import CONNECTOR_IN

if TYPE_CHECKING:
    from .definition import WorkflowDefinition, WorkflowEdge, WorkflowNode

BATCH_COLLECTION_INPUT = {
    "image_batch": "images",
    "string_batch": "strings",
    "integer_batch": "integers",
    "float_batch": "floats",
}
"""The input of each batch node type that holds its items."""
BATCH_OUTPUT_HANDLE = {"image_batch": "image"}
"""The output of a batch node type that carries its items (``value`` when not listed)."""
BATCH_GROUPS = ("None", "Group 1", "Group 2", "Group 3", "Group 4", "Group 5")
"""The GUI's batch groups: ``None`` crosses a node's items with the rest, ``Group N`` zips."""

T = TypeVar("T")

DataEdge = tuple[str, str, str, str]
"""``(source, source_field, target, target_field)``."""


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


@dataclass(frozen=True)
class Topology:
    """What feeds what in one workflow (see the module docstring)."""

    data_edges: tuple[DataEdge, ...]
    fed: Mapping[tuple[str, str], str]
    """Inputs fed by an edge or a batch node -> ``"node.field"`` or ``"batch node <id>"``."""
    batch_fed: frozenset[tuple[str, str]]
    """The inputs fed by batch nodes."""
    batch_targets: Mapping[str, tuple[tuple[str, str], ...]]
    """Batch node id -> the inputs its output feeds."""


_CACHE: dict[int, dict[Any, Any]] = {}
_MISSING = object()


def per_definition(definition: WorkflowDefinition, key: Any, compute: Callable[[], T], *,
                   owner: object | None = None) -> T:
    """``compute()`` once per definition object and ``key`` (what depends only on the
    immutable definition is shared by every handle of it; dropped with the definition).

    ``owner``: another object the value is made from (a client's node schemas), held
    weakly: the value is dropped with it, so a long-lived definition does not keep every
    closed client's schemas alive."""
    slot = id(definition)
    cached = _CACHE.get(slot)
    if cached is None:
        cached = _CACHE[slot] = {}
        weakref.finalize(definition, _CACHE.pop, slot, None)
    if owner is not None:
        by_owner = cached.get((_MISSING, key))  # apart from the same key without owner
        if by_owner is None:
            by_owner = cached[_MISSING, key] = weakref.WeakKeyDictionary()
        found = by_owner.get(owner, _MISSING)
        if found is _MISSING:
            found = by_owner[owner] = compute()
        return cast(T, found)
    if key not in cached:
        cached[key] = compute()
    return cast(T, cached[key])


def topology_of(definition: WorkflowDefinition) -> Topology:
    """The :class:`Topology` of ``definition`` (computed once per definition object)."""
    return per_definition(definition, Topology, lambda: _compute(definition))


def _compute(definition: WorkflowDefinition) -> Topology:
    edges = _data_edges(definition)
    fed: dict[tuple[str, str], str] = {
        (target, target_field): f"{source}.{source_field}"
        for source, source_field, target, target_field in edges
    }
    targets: dict[str, tuple[tuple[str, str], ...]] = {}
    for node in definition.nodes.values():
        if node.is_invocation and node.type in BATCH_COLLECTION_INPUT:
            handle_name = BATCH_OUTPUT_HANDLE.get(node.type, "value")
            targets[node.id] = tuple(_batch_targets(definition, node.id, handle_name))
            for target in targets[node.id]:
                fed[target] = f"batch node {node.id}"
    batch_fed = frozenset(key for key, feeder in fed.items() if feeder.startswith("batch"))
    return Topology(tuple(edges), fed, batch_fed, targets)


def _data_edges(definition: WorkflowDefinition) -> list[DataEdge]:
    nodes = definition.nodes
    result: list[DataEdge] = []
    seen: set[DataEdge] = set()
    for edge in definition.edges:
        if edge.type != "default" or edge.source_handle is None or edge.target_handle is None:
            continue
        target = nodes.get(edge.target)
        source = nodes.get(edge.source)
        if target is None or not target.is_executable or source is None:
            continue
        resolved: tuple[str, str] | None = None
        if source.is_invocation and source.is_executable:
            resolved = (source.id, edge.source_handle)
        elif source.kind == "connector":
            resolved = resolve_connector_source(source.id, nodes, definition.edges)
            if resolved is not None and not nodes[resolved[0]].is_executable:
                resolved = None
        if resolved is None:
            continue
        key = (resolved[0], resolved[1], edge.target, edge.target_handle)
        if key not in seen:
            seen.add(key)
            result.append(key)
    return result


def _batch_targets(
    definition: WorkflowDefinition, node_id: str, source_handle: str
) -> list[tuple[str, str]]:
    """Executable inputs fed by a batch node's output, through connectors if needed."""
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


__all__ = [
    "BATCH_COLLECTION_INPUT",
    "BATCH_GROUPS",
    "BATCH_OUTPUT_HANDLE",
    "DataEdge",
    "Topology",
    "per_definition",
    "resolve_connector_source",
    "topology_of",
]
