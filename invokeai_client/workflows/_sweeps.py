"""Batch data of a workflow: sweeps, zips, raw data groups and the workflow's batch nodes.

``Batch.data`` is a list of groups; groups are combined as a cartesian product and the datums
inside one group are zipped. Here they are built from what a user says (a ``sweep`` of input
keys, ``zip`` groups, raw ``data``) and from the workflow's own batch and generator nodes
(grouped like the GUI groups them), and every item is checked with its input's field type:
the server would accept a wrong-typed item and then stall its whole queue on it. The rules
of the body as a whole live in :mod:`invokeai_client.types.batch`.
"""

from __future__ import annotations

import builtins
import copy
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any

from ..errors import ValidationError
from ..fields._base import UNSET, ImageResolver, IvkField
from ..types.batch import ONCE_RULE, check_zipped
from ..types.queue import is_batch_item
from ._topology import (
    BATCH_COLLECTION_INPUT,
    per_definition,
    resolve_connector_source,
    topology_of,
)
from .definition import BATCH_NODE_TYPES, GENERATOR_NODE_TYPES, WorkflowDefinition, WorkflowNode
from .form import IvkWorkflowInput, WorkflowForm, WorkflowValues, knows_input, new_field
from .generators import generator_values

Groups = list[list[dict[str, Any]]]
"""Batch data groups as JSON: ``[[{"node_path", "field_name", "items"}, ...], ...]``."""

KeyResolver = Callable[[Any], str]
"""Turns an input key (index, label, ``"node_id.field_name"``) into ``"node_id.field_name"``."""


def sweep_groups(
    sweep: Mapping[Any, Iterable[Any]], zip: bool | Sequence[Sequence[Any]], full_key: KeyResolver
) -> Groups:
    """``Batch.data`` groups of a sweep: each input on its own unless zipped with others.

    Datums keep the user's key under ``"input"`` (resolved by :func:`resolve_data`)."""
    if not isinstance(sweep, Mapping):
        raise ValidationError(
            f"sweep must map input keys to lists of values, got {type(sweep).__name__}",
            input="sweep",
            rule="mapping of key to values",
        )
    keys = {full_key(key): key for key in sweep}
    if len(keys) != len(sweep):
        raise ValidationError(
            "sweep names one input twice (under two keys)", input="sweep",
            rule=ONCE_RULE,
        )
    zipped = _zip_groups(zip, keys, full_key)
    groups: Groups = []
    done: builtins.set[str] = builtins.set()
    for full in keys:
        if full in done:
            continue
        members = next((group for group in zipped if full in group), [full])
        groups.append([{"input": keys[m], "items": _as_items(sweep[keys[m]], m)}
                       for m in members])
        done.update(members)
    return groups


def swept_names(groups: Groups, form: WorkflowForm) -> dict[str, str]:
    """``"node_id.field_name"`` -> the name results use for a swept input: the sweep's own
    text key (a label, or the full key), else the input's label (full keys where names
    repeat)."""
    names: dict[str, str] = {}
    for group in groups:
        for datum in group:
            key = datum["input"]
            full = form.full_key(key)
            if isinstance(key, str):
                names[full] = key
            else:
                found = form.find(key)
                label = found.label if isinstance(found, IvkWorkflowInput) else ""
                names[full] = label or full
    taken = Counter(names.values())
    return {full: name if taken[name] == 1 else full for full, name in names.items()}


def _zip_groups(
    zip: bool | Sequence[Sequence[Any]], keys: Mapping[str, Any], full_key: KeyResolver
) -> list[list[str]]:
    bad_zip = ValidationError(
        "zip must be True or a list of groups of sweep keys, e.g. [['Seed', 'Prompt']]",
        input="zip",
        rule="list of key groups",
    )
    if zip is True:
        return [list(keys)] if keys else []
    if zip is False:
        return []
    if isinstance(zip, (str, bytes, Mapping)) or not isinstance(zip, Sequence):
        raise bad_zip
    zipped = []
    for group in zip:
        if isinstance(group, (str, bytes, int)) or not isinstance(group, Sequence):
            raise bad_zip
        resolved = []
        for key in group:
            full = full_key(key)
            if full not in keys:
                raise ValidationError(
                    f"zip names {key!r}, which is not a key of sweep",
                    input=str(key),
                    rule="zip keys come from sweep",
                )
            resolved.append(full)
        zipped.append(resolved)
    if len({full for group in zipped for full in group}) != sum(len(g) for g in zipped):
        raise ValidationError("zip lists one input twice", input="zip", rule="each key once")
    return zipped


def _as_items(values: Any, key: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(
            f"sweep values for {key} must be a list of values, got {type(values).__name__}",
            input=key,
            rule="list of values",
        )
    return list(values)


def resolve_data(data: Any, full_key: KeyResolver) -> Groups:
    """User ``data`` as groups of ``{"node_path", "field_name", "items"}``: a datum may name
    its input by key (``{"input": key, "items"}``); zipped datums must have equal lengths."""
    if data is None:
        return []
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise ValidationError(
            "data must be a list of groups, each a list of {'node_path', 'field_name', "
            f"'items'}} datums; got {type(data).__name__}",
            input="data",
            rule="list of groups",
        )
    groups: Groups = []
    for index, group in enumerate(data):
        if isinstance(group, Mapping):
            raise ValidationError(
                f"data[{index}] is a datum, but data is a list of groups: wrap it as "
                "[[datum]] (datums inside one group are zipped, groups are multiplied)",
                input=f"data[{index}]",
                rule="list of groups",
            )
        if isinstance(group, (str, bytes)) or not isinstance(group, Sequence) or not group:
            raise ValidationError(
                f"data[{index}] must be a non-empty list of datums",
                input=f"data[{index}]",
                rule="group",
            )
        groups.append([_resolve_datum(datum, f"data[{index}][{n}]", full_key)
                       for n, datum in enumerate(group)])
        check_zipped(index, [(f"{d['node_path']}.{d['field_name']}", len(d["items"]))
                             for d in groups[-1] if isinstance(d["items"], Sized)],
                     where=f"data[{index}]")
    return groups


def _resolve_datum(datum: Any, where: str, full_key: KeyResolver) -> dict[str, Any]:
    if not isinstance(datum, Mapping):
        raise ValidationError(f"{where} must be a datum object", input=where, rule="datum")
    node_path: Any
    field_name: Any
    if "input" in datum:
        node_path, field_name = full_key(datum["input"]).rsplit(".", 1)
    else:
        node_path, field_name = datum.get("node_path"), datum.get("field_name")
    if not isinstance(node_path, str) or not isinstance(field_name, str):
        raise ValidationError(
            f"{where} needs 'node_path' and 'field_name' (or 'input')", input=where,
            rule="datum",
        )
    return {"node_path": node_path, "field_name": field_name, "items": datum.get("items")}


def input_field(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: Any,
    node_path: str,
    field_name: str,
) -> IvkField[Any] | None:
    """The field typing a node input: the handle's, else one made from the literal (not
    kept), or None when the node has no such input."""
    held = values.fields.get((node_path, field_name))
    if held is not None:
        return held
    node = definition.nodes.get(node_path)
    if node is None or not node.is_invocation or not knows_input(node, field_name, schemas):
        return None
    return new_field(node, field_name, schemas, values.registry)


def typed_datum(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: Any,
    datum: Mapping[str, Any],
    *,
    where: str,
    images: ImageResolver,
    fed: builtins.set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
) -> dict[str, Any]:
    """A datum whose items are checked by the input's field and in API form."""
    node_path, field_name = datum["node_path"], datum["field_name"]
    node = definition.nodes.get(node_path)
    if node is None or not node.is_executable:
        raise ValidationError(
            f"{where}: node_path {node_path!r} is not a node of the graph",
            input=node_path,
            rule="node in graph",
        )
    target = input_field(definition, values, schemas, node_path, field_name)
    if target is None:
        raise ValidationError(
            f"{where}: node {node_path!r} ({node.type}) has no input {field_name!r}",
            input=f"{node_path}.{field_name}",
            rule="known input",
        )
    if (node_path, field_name) in fed:
        raise ValidationError(
            f"{where}: input {target.display_name()} is fed by an edge; batch items "
            "for it would be ignored",
            input=target.display_name(),
            rule="not connected",
        )
    items = _checked_items(target, datum["items"], where, images)
    return {"node_path": node_path, "field_name": field_name, "items": items}


def _checked_items(target: IvkField[Any], items: Any, where: str, images: ImageResolver
                   ) -> list[Any]:
    name = target.display_name()
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValidationError(
            f"{where}: items for {name} must be a list, got {type(items).__name__}",
            input=name,
            rule="list of items",
        )
    checked = []
    for position, item in enumerate(items):
        try:
            value = target.check(item)
            if value is UNSET:
                raise ValidationError("no value", input=name, rule="value")
            api_value = target.api_value(value, images)
            if not is_batch_item(api_value):
                raise ValidationError(
                    f"input {name}: a {target.kind} cannot be varied in a batch (InvokeAI "
                    "batches carry numbers, strings, images and videos); set it per run "
                    "instead",
                    input=name,
                    rule="batchable type",
                )
            checked.append(copy.deepcopy(api_value))
        except ValidationError as exc:
            message = str(exc).removeprefix("input ")
            raise ValidationError(
                f"{where}: item {position} for {message}", input=exc.input or name,
                rule=exc.rule,
            ) from None
    if not checked:
        raise ValidationError(
            f"{where}: items for {name} must not be empty", input=name, rule="non-empty"
        )
    return checked


def literal_value(
    values: WorkflowValues, node: WorkflowNode, name: str, images: ImageResolver | None = None
) -> Any:
    """An input's value in API form: the handle's field, else the workflow's literal."""
    held = values.fields.get((node.id, name))
    if held is not None:
        return copy.deepcopy(held.to_api(images))
    spec = node.inputs.get(name)
    return copy.deepcopy(spec.value) if spec is not None else UNSET


def batch_node_data(
    definition: WorkflowDefinition, values: WorkflowValues, schemas: Any, images: ImageResolver
) -> Groups:
    """``Batch.data`` from the workflow's batch nodes, grouped like the GUI groups them."""
    batch_nodes = per_definition(definition, "batch nodes", lambda: [
        n for n in definition.nodes.values() if n.is_invocation and n.type in BATCH_NODE_TYPES
    ])
    if not batch_nodes:
        return []
    groups: dict[str, list[WorkflowNode]] = {}
    for node in batch_nodes:
        group = literal_value(values, node, "batch_group_id", images)
        groups.setdefault(group if isinstance(group, str) and group else "None", []).append(node)
    targets = topology_of(definition).batch_targets
    data: Groups = []
    for group, members in groups.items():
        zipped: list[dict[str, Any]] = []
        for node in members:
            where = f"batch node {node.title!r} ({node.id})"
            items = _batch_items(definition, values, node, images)
            if not items:
                raise ValidationError(
                    f"{where} has no items to batch over", input=node.id, rule="non-empty batch"
                )
            if not targets.get(node.id):
                raise ValidationError(
                    f"{where} is not connected to any node input", input=node.id, rule="connected"
                )
            datums = [
                typed_datum(definition, values, schemas,
                            {"node_path": target[0], "field_name": target[1], "items": items},
                            where=where, images=images)
                for target in targets[node.id]
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


def _batch_items(
    definition: WorkflowDefinition, values: WorkflowValues, node: WorkflowNode,
    images: ImageResolver,
) -> list[Any]:
    collection = BATCH_COLLECTION_INPUT[node.type]
    feeding = next(
        (
            e
            for e in definition.edges
            if e.type == "default" and e.target == node.id and e.target_handle == collection
        ),
        None,
    )
    if feeding is None:
        value = literal_value(values, node, collection, images)
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
    if generator.id in values.generated:
        return list(values.generated[generator.id])
    spec = literal_value(values, generator, "generator", images)
    return generator_values(
        generator.type, spec, f"generator node {generator.title!r} ({generator.id})"
    )


__all__ = [
    "Groups",
    "KeyResolver",
    "batch_node_data",
    "input_field",
    "literal_value",
    "resolve_data",
    "sweep_groups",
    "swept_names",
    "typed_datum",
]
