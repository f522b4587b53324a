"""The workflow JSON with a handle's values, as the GUI saves it and attaches it to a batch.

The GUI attaches the workflow (without its library id) to every batch it enqueues, so that
saved images embed it; it sends ``null`` instead when the workflow would not pass the
server's workflow validation. Values replace the ``value`` of each input that has a field;
node options replace ``useCache`` / ``isIntermediate``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..fields._base import UNSET
from ..types.batch import JSONText
from ._topology import per_definition
from .definition import WorkflowDefinition
from .form import WorkflowValues

Converted = Mapping[tuple[str, str], Any]
"""``(node_id, field_name)`` -> the value of the handle's field in API form (``UNSET``: none;
local images not uploaded are left out), converted once per compile."""


def workflow_for_batch(definition: WorkflowDefinition, values: WorkflowValues,
                       converted: Converted) -> JSONText | dict[str, Any] | None:
    """The workflow JSON the GUI attaches to a batch (current values, no id), or None when it
    would not pass the server's workflow validation (the GUI also sends null then).

    Rendered from a template made once per definition and node options: only the inputs that
    have a field are encoded again (the same text as ``json.dumps`` of the workflow). A
    document JSON cannot encode as it is (a set somewhere) is attached as a dict instead."""
    options = tuple(sorted((node, tuple(sorted(o.items())))
                           for node, o in values.node_options.items() if o))
    try:
        template = per_definition(definition, ("gui template", options),
                                  lambda: _Template.make(definition, values))
        if not template.accepted:
            return None
        parts = [template.segments[0]]
        for slot, segment in zip(template.slots, template.segments[1:], strict=True):
            parts.append(slot.render(converted))
            parts.append(segment)
    except (TypeError, ValueError):
        workflow = gui_workflow(definition, values, converted)
        workflow.pop("id", None)
        return workflow if _server_accepts_workflow(workflow) else None
    return JSONText("".join(parts))


_SLOT = re.compile(r'"\\u0000slot(\d+)\\u0000"')
_SCALARS = (str, int, float, bool, type(None))


@dataclass
class _Slot:
    """One input of the template: its spec without the value, rendered per compile."""

    key: tuple[str, str]
    spec: dict[str, Any]
    text: str
    """The spec as the workflow has it (inputs with no field)."""
    last: tuple[Any, Any, str] | None = field(default=None, compare=False)

    def render(self, converted: Converted) -> str:
        if self.key not in converted:
            return self.text
        value = converted[self.key]
        last = self.last
        if last is not None and last[0] is type(value) and last[1] == value:
            return last[2]
        spec = {k: v for k, v in self.spec.items() if k != "value"}
        if value is not UNSET:
            spec = dict(self.spec)
            spec["value"] = value
        text = json.dumps(spec)
        if isinstance(value, _SCALARS):
            self.last = (type(value), value, text)
        return text


@dataclass(frozen=True)
class _Template:
    accepted: bool
    segments: list[str]
    slots: list[_Slot]

    @classmethod
    def make(cls, definition: WorkflowDefinition, values: WorkflowValues) -> _Template:
        workflow = _shape(definition.to_dict())
        workflow.pop("id", None)
        slots: list[_Slot] = []
        for node in workflow["nodes"]:
            if node["type"] != "invocation":
                continue
            _apply_options(values, node)
            inputs = node["data"].get("inputs")
            for name, spec in (inputs.items() if isinstance(inputs, dict) else ()):
                if isinstance(spec, dict):
                    slots.append(_Slot((node["id"], name), spec, json.dumps(spec)))
                    inputs[name] = f"\x00slot{len(slots) - 1}\x00"
        pieces = _SLOT.split(json.dumps(workflow))
        order = [int(index) for index in pieces[1::2]]
        return cls(_server_accepts_workflow(workflow), pieces[0::2], [slots[i] for i in order])


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


def gui_workflow(
    definition: WorkflowDefinition, values: WorkflowValues, converted: Converted
) -> dict[str, Any]:
    """The workflow JSON with ``values``, shaped like the GUI serialises it."""
    workflow = _shape(definition.to_dict())
    for node in workflow["nodes"]:
        if node["type"] == "invocation":
            _apply_options(values, node)
            _apply_values(converted, node)
    return workflow


def _shape(source: dict[str, Any]) -> dict[str, Any]:
    """The workflow JSON (a copy of the file's) keeping what the GUI serialises."""
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


def _apply_options(values: WorkflowValues, node: dict[str, Any]) -> None:
    options = values.node_options.get(node["id"], {})
    if "use_cache" in options:
        node["data"]["useCache"] = options["use_cache"]
    if "is_intermediate" in options:
        node["data"]["isIntermediate"] = options["is_intermediate"]


def _apply_values(converted: Converted, node: dict[str, Any]) -> None:
    inputs = node["data"].get("inputs")
    if not isinstance(inputs, dict):
        return
    for name, spec in inputs.items():
        key = (node["id"], name)
        if key not in converted or not isinstance(spec, dict):
            continue
        value = converted[key]
        if value is UNSET:
            spec.pop("value", None)
        else:
            spec["value"] = copy.deepcopy(value)


__all__ = ["REQUIRED_WORKFLOW_STRINGS", "gui_workflow", "workflow_for_batch"]
