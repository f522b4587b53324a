"""The workflow JSON with a handle's values, as the GUI saves it and attaches it to a batch.

The GUI attaches the workflow (without its library id) to every batch it enqueues, so that
saved images embed it; it sends ``null`` instead when the workflow would not pass the
server's workflow validation. Values replace the ``value`` of each input that has a field;
node options replace ``useCache`` / ``isIntermediate``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..fields._base import UNSET, ImageResolver
from .definition import WorkflowDefinition
from .form import WorkflowValues


def workflow_for_batch(
    definition: WorkflowDefinition, values: WorkflowValues, images: ImageResolver
) -> dict[str, Any] | None:
    """The workflow JSON the GUI attaches to a batch (current values, no id), or None when it
    would not pass the server's workflow validation (the GUI also sends null then)."""
    workflow = gui_workflow(definition, values, images)
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


def gui_workflow(
    definition: WorkflowDefinition, values: WorkflowValues, images: ImageResolver
) -> dict[str, Any]:
    """The workflow JSON with ``values``, shaped like the GUI serialises it (images that are
    not uploaded are left out)."""
    source = definition.to_dict()
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
            _apply_values(values, node, images)
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


def _apply_values(values: WorkflowValues, node: dict[str, Any], images: ImageResolver) -> None:
    node_id = node["id"]
    data = node["data"]
    options = values.node_options.get(node_id, {})
    if "use_cache" in options:
        data["useCache"] = options["use_cache"]
    if "is_intermediate" in options:
        data["isIntermediate"] = options["is_intermediate"]
    inputs = data.get("inputs")
    if not isinstance(inputs, dict):
        return
    for name, spec in inputs.items():
        field = values.fields.get((node_id, name))
        if field is None or not isinstance(spec, dict):
            continue
        value = field.to_api(images)
        if value is UNSET:
            spec.pop("value", None)
        else:
            spec["value"] = copy.deepcopy(value)


__all__ = ["REQUIRED_WORKFLOW_STRINGS", "gui_workflow", "workflow_for_batch"]
