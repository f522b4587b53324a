"""What every item's state needs to know of its batch (plain data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .results import FieldValues, ImageHost

__all__ = ["MAX_NODE_FRAMES", "BatchShape"]

MAX_NODE_FRAMES = 50_000
"""Ended nodes (prepared invocations) one item's event story may hold; past it the result
comes from REST."""


_NO_NAMES: Mapping[str, str] = MappingProxyType({})


class BatchShape:
    """What every item's state needs to know of its batch: its id, how many graph nodes
    report an output (and which), which nodes iterate, the batch data (to tell each item's
    values) and where output images download from. ``confirmed`` turns True with the enqueue answer:
    until then nothing settles (the item's place in the batch is unknown)."""

    __slots__ = (
        "batch_id",
        "confirmed",
        "groups",
        "image_host",
        "iterated",
        "names",
        "node_count",
        "node_types",
        "per_run",
    )

    def __init__(
        self,
        batch_id: str,
        *,
        node_count: int = 0,
        iterated: frozenset[str] = frozenset(),
        groups: list[list[dict[str, Any]]] | None = None,
        image_host: ImageHost | None = None,
        node_types: Mapping[str, Any] | None = None,
    ) -> None:
        self.batch_id = batch_id
        self.node_count = node_count
        self.node_types = node_types
        """Each graph node's id -> its invocation type as the graph says it, or None when
        the graph is unknown. Node frames naming a node not listed are not ours; the types name
        nodes in events told after the fact (a late reader, REST catch-up), which carry no
        invocation."""
        self.iterated = iterated
        self.groups = groups
        self.image_host = image_host
        self.per_run = 1
        for group in groups or ():
            self.per_run *= len(group[0]["items"])
        self.names: Mapping[str, str] = _NO_NAMES
        """How ``field_values`` name a swept input: ``"node_id.field_name"`` -> the key the
        sweep used (its label); inputs not listed keep their full key."""
        self.confirmed = False

    def node_type(self, node_id: str) -> str | None:
        """The invocation type of graph node ``node_id``, when known."""
        kind = self.node_types.get(node_id) if self.node_types else None
        return kind if isinstance(kind, str) else None

    def values_at(self, index: int) -> FieldValues:
        """The batch values substituted into the item at ``index`` (submission order)."""
        groups = self.groups
        if not groups or index < 0:
            return FieldValues({})  # lenient: an item not placed in its batch yet has none
        position = index % self.per_run
        picks: list[int] = []
        for group in reversed(groups):
            size = len(group[0]["items"])
            picks.append(position % size)
            position //= size
        picks.reverse()
        values: dict[str, Any] = {}
        for group, pick in zip(groups, picks, strict=True):
            for datum in group:
                values[f"{datum['node_path']}.{datum['field_name']}"] = datum["items"][pick]
        return FieldValues(values, self.names)
