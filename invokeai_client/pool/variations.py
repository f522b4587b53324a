"""Variations: a sweep expanded the way InvokeAI expands a batch, and chunks of it as bodies.

Pure. InvokeAI turns ``Batch.data`` + ``runs`` into queue items server side (``runs``
outermost, then the cartesian product of the groups, first group outermost, datums inside a
group zipped). To spread one sweep over several servers, and to feed a server no faster than
its queue drains, the pool expands the sweep here, in the same order, into single
variations, and sends any slice of them as ONE batch whose data is a single zipped group:
the server makes exactly one item per variation, in order (item ids ascend with it).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..runs import FieldValues
from ..types.batch import check_runs, check_zipped
from ._images import given, named

__all__ = ["Variation", "VariationSet", "chunk_body", "expand"]

FieldPath = tuple[str, str]  # (node_path, field_name)


@dataclass(frozen=True)
class Variation:
    """One queue item to be: its position in the sweep and the value of each varied field."""

    index: int
    values: tuple[Any, ...]

    def as_dict(self, fields: Sequence[FieldPath]) -> dict[str, Any]:
        """``{"node_id.field_name": value}`` for the varied fields."""
        pairs = zip(fields, self.values, strict=True)
        return {f"{node}.{name}": value for (node, name), value in pairs}


@dataclass(frozen=True)
class VariationSet:
    """Every variation of a sweep, the fields they vary (in datum order), and the names the
    user gave the swept inputs (``"node_id.field_name"`` -> the sweep's key or label)."""

    fields: tuple[FieldPath, ...]
    variations: tuple[Variation, ...]
    names: Mapping[str, str] = field(default_factory=dict)
    given: Mapping[str, Any] = field(default_factory=dict)
    """Local image token -> what the user gave (its path); see :mod:`._images`."""

    def __len__(self) -> int:
        return len(self.variations)

    def inputs(self, index: int) -> FieldValues:
        """Variation ``index``'s values keyed as the user named the inputs (each also
        readable by its ``"node_id.field_name"``), local images as the user gave them."""
        values = self.variations[index].as_dict(self.fields)
        if self.given:
            values = {key: given(value, self.given) for key, value in values.items()}
        return FieldValues(values, self.names)


def count(groups: Sequence[Sequence[Mapping[str, Any]]] | None, runs: int) -> int:
    """How many items InvokeAI makes for ``data`` and ``runs`` (without expanding them)."""
    total = runs
    for group in groups or ():
        total *= len(group[0]["items"])
    return total


def expand(
    groups: Sequence[Sequence[Mapping[str, Any]]] | None, runs: int = 1,
    names: Mapping[str, str] | None = None,
) -> VariationSet:
    """Every variation of ``Batch.data`` groups repeated ``runs`` times, in the server's order.

    Each group's datums are zipped (equal lengths required) and the groups multiplied, the
    first group outermost; ``runs`` is the outermost loop. ``names`` are the user's names
    of the swept inputs (see :attr:`VariationSet.names`).
    """
    check_runs(runs, kind="an integer")  # the batch body's own rules
    fields: list[FieldPath] = []
    zipped: list[list[tuple[Any, ...]]] = []
    for g, group in enumerate(groups or ()):
        check_zipped(g, [(f"{d['node_path']}.{d['field_name']}", len(d["items"])) for d in group],
                     where=f"data[{g}]")
        fields.extend((datum["node_path"], datum["field_name"]) for datum in group)
        zipped.append(list(zip(*(datum["items"] for datum in group), strict=True)))
    combos = [tuple(itertools.chain.from_iterable(c)) for c in itertools.product(*zipped)]
    variations = tuple(
        Variation(index, values)
        for index, values in enumerate(v for _ in range(runs) for v in combos)
    )
    return VariationSet(tuple(fields), variations, dict(names or {}))


def chunk_body(
    base: Mapping[str, Any],
    fields: Sequence[FieldPath],
    chunk: Sequence[Variation],
    batch_id: str,
    images: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An enqueue body making one item per variation of ``chunk``, in order.

    ``base`` is a full enqueue body of the workflow (its graph, workflow, origin; its data and
    runs are replaced). Without varied fields the chunk is ``runs=len(chunk)``. ``images``
    maps local image tokens to the server's image names.
    """
    if not chunk:
        raise ValueError("a chunk holds at least one variation")
    batch = dict(base["batch"])
    batch["batch_id"] = batch_id
    if fields:
        batch["data"] = [
            [
                {"node_path": node, "field_name": name,
                 "items": [named(v.values[i], images) if images else v.values[i]
                           for v in chunk]}
                for i, (node, name) in enumerate(fields)
            ]
        ]
        batch["runs"] = 1
    else:
        batch.pop("data", None)
        batch["runs"] = len(chunk)
    return {"batch": batch, "prepend": bool(base.get("prepend", False))}


def values_key(values: Mapping[str, Any]) -> str:
    """A canonical JSON text of a variation's inputs (the manifest stores and compares it)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def chunks(items: Sequence[Variation], size: int) -> Iterator[Sequence[Variation]]:
    """``items`` cut into consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
