"""WorkflowDefinition: a GUI-exported workflow, checked once and then never changed.

The definition keeps a private deep copy of the JSON, validates its structure (schema
version, nodes, edges, form) and precomputes what handles need: the invocation nodes, the
edges and the exposed inputs in the order the GUI's form shows them. Every handle made from it
copies values; nothing writes back into the definition.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from .._limits import json_limit_problem
from ..errors import WorkflowError
from ..fields._base import UNSET

SUPPORTED_SCHEMA_MAJORS = (3, 4)
BATCH_NODE_TYPES = frozenset({"image_batch", "string_batch", "integer_batch", "float_batch"})
GENERATOR_NODE_TYPES = frozenset(
    {"image_generator", "string_generator", "integer_generator", "float_generator"}
)
UI_ONLY_NODE_KINDS = frozenset({"notes", "connector", "current_image"})
CONNECTOR_IN = "in"
CONNECTOR_OUT = "out"

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


@dataclass(frozen=True)
class NodeInput:
    """One input of a node as the workflow file has it."""

    name: str
    label: str = ""
    description: str = ""
    value: Any = UNSET
    """The literal in the file (``UNSET`` when the input has no ``value``). Do not mutate."""


@dataclass(frozen=True)
class WorkflowNode:
    """A node of the workflow: an invocation (``kind == "invocation"``) or a UI-only node."""

    id: str
    kind: str
    type: str
    """The invocation type (``"blank_image"``), or the kind for UI-only nodes."""
    label: str = ""
    version: str = ""
    is_intermediate: bool = False
    use_cache: bool | None = None
    inputs: Mapping[str, NodeInput] = field(default_factory=dict)

    @property
    def is_invocation(self) -> bool:
        return self.kind == "invocation"

    @property
    def is_executable(self) -> bool:
        """An invocation that becomes a graph node (batch and generator nodes do not)."""
        return self.is_invocation and self.type not in BATCH_NODE_TYPES | GENERATOR_NODE_TYPES

    @property
    def title(self) -> str:
        return self.label or self.type


@dataclass(frozen=True)
class WorkflowEdge:
    """An edge: ``default`` edges carry data from ``source.source_handle`` to
    ``target.target_handle``; ``collapsed`` edges are drawn between collapsed nodes only."""

    id: str
    type: str
    source: str
    target: str
    source_handle: str | None = None
    target_handle: str | None = None


@dataclass(frozen=True)
class ExposedField:
    """An input shown in the workflow's form (or listed in ``exposedFields``)."""

    node_id: str
    field_name: str
    element_id: str | None = None
    settings: Mapping[str, Any] | None = None
    show_description: bool = True


def _where(index: int, item: Any) -> str:
    ident = item.get("id") if isinstance(item, Mapping) else None
    return f"#{index} ({ident!r})" if isinstance(ident, str) else f"#{index}"


def parse_schema_version(version: Any) -> tuple[int, int, int]:
    """``meta.version`` as a tuple; WorkflowError naming it if it is not supported."""
    if not isinstance(version, str):
        raise WorkflowError(
            f"workflow meta.version must be a version string such as '3.0.0', got {version!r}"
        )
    match = _SEMVER.match(version.strip())
    if not match:
        raise WorkflowError(f"workflow meta.version {version!r} is not a semantic version")
    parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if parts[0] not in SUPPORTED_SCHEMA_MAJORS:
        raise WorkflowError(
            f"workflow schema version {version!r} is not supported: this SDK reads 3.x (InvokeAI "
            "4.0-6.12) and 4.x (6.13+) workflows; open and re-save older ones in a current GUI"
        )
    return parts


class WorkflowDefinition:
    """An immutable workflow (the GUI's JSON export), validated and indexed.

    Make one with :meth:`from_dict`, :meth:`from_json` or :meth:`from_file` (or let
    ``client.workflows.load`` do it). ``to_dict()`` returns a fresh copy of the JSON.
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_edges",
        "_exposed",
        "_exposed_source",
        "_frozen",
        "_nodes",
        "_schema_version",
    )

    _data: dict[str, Any]
    _schema_version: tuple[int, int, int]
    _nodes: Mapping[str, WorkflowNode]
    _edges: tuple[WorkflowEdge, ...]
    _exposed: tuple[ExposedField, ...]
    _exposed_source: Literal["form", "exposedFields", "none"]
    _frozen: bool

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise WorkflowError(f"a workflow must be a JSON object, got {type(data).__name__}")
        problem = json_limit_problem(data)
        if problem is not None:
            raise WorkflowError(f"refusing a workflow with {problem}")
        owned: dict[str, Any] = copy.deepcopy(dict(data))
        object.__setattr__(self, "_data", owned)
        meta = owned.get("meta")
        if not isinstance(meta, Mapping):
            raise WorkflowError("workflow has no 'meta' object, so its schema version is unknown")
        object.__setattr__(self, "_schema_version", parse_schema_version(meta.get("version")))
        nodes = _parse_nodes(owned.get("nodes"))
        object.__setattr__(self, "_nodes", MappingProxyType(nodes))
        object.__setattr__(self, "_edges", tuple(_parse_edges(owned.get("edges", []), nodes)))
        exposed, source = _parse_exposed(owned, nodes)
        object.__setattr__(self, "_exposed", tuple(exposed))
        object.__setattr__(self, "_exposed_source", source)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("WorkflowDefinition is immutable; make a handle to set values")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("WorkflowDefinition is immutable")

    def __copy__(self) -> WorkflowDefinition:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> WorkflowDefinition:
        return self

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowDefinition:
        """From the parsed JSON (the dict is copied; later changes to it do not matter)."""
        return cls(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowDefinition:
        """From JSON text; malformed JSON raises WorkflowError with the line and column."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowError(
                f"workflow JSON is malformed at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise WorkflowError("refusing workflow JSON nested too deeply") from None
        except (UnicodeDecodeError, TypeError, ValueError) as exc:
            raise WorkflowError(f"workflow JSON could not be decoded: {exc}") from None
        return cls(data)

    @classmethod
    def from_file(cls, path: str | Path) -> WorkflowDefinition:
        """From a file (blocking read: in async code use ``await client.workflows.load``)."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise WorkflowError(
                f"cannot read workflow file {str(path)!r}: {exc.strerror or exc}"
            ) from None
        try:
            return cls.from_json(text)
        except WorkflowError as exc:
            raise WorkflowError(f"{path}: {exc}") from None

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the workflow JSON."""
        return copy.deepcopy(self._data)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self._data, indent=indent)

    def get(self, key: str, default: Any = None) -> Any:
        """A copy of one top-level value of the JSON (``name``, ``form`` ...)."""
        return copy.deepcopy(self._data.get(key, default))

    # -- metadata --------------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The library id, or None for a workflow that was never saved on a server."""
        value = self._data.get("id")
        return value if isinstance(value, str) and value else None

    @property
    def name(self) -> str:
        return _text(self._data.get("name"))

    @property
    def description(self) -> str:
        return _text(self._data.get("description"))

    @property
    def author(self) -> str:
        return _text(self._data.get("author"))

    @property
    def version(self) -> str:
        """The workflow's own version (set by its author), not the schema version."""
        return _text(self._data.get("version"))

    @property
    def tags(self) -> list[str]:
        raw = self._data.get("tags")
        if isinstance(raw, list):
            return [str(t) for t in raw]
        return [t.strip() for t in _text(raw).split(",") if t.strip()]

    @property
    def schema_version(self) -> str:
        """``meta.version``: ``"3.0.0"`` (InvokeAI 4.0-6.12) or ``"4.0.0"`` (6.13+)."""
        return ".".join(str(p) for p in self._schema_version)

    @property
    def category(self) -> str:
        meta = self._data.get("meta")
        return _text(meta.get("category")) if isinstance(meta, Mapping) else ""

    # -- structure -------------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, WorkflowNode]:
        """Every node by id, in file order."""
        return self._nodes

    def node(self, node_id: str) -> WorkflowNode:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise WorkflowError(f"workflow {self.name!r} has no node {node_id!r}") from None

    @property
    def edges(self) -> tuple[WorkflowEdge, ...]:
        return self._edges

    @property
    def exposed_fields(self) -> tuple[ExposedField, ...]:
        """The inputs the GUI shows, in form order (depth-first) or ``exposedFields`` order."""
        return self._exposed

    @property
    def exposed_source(self) -> Literal["form", "exposedFields", "none"]:
        """Where :attr:`exposed_fields` came from."""
        return self._exposed_source

    def invocation_nodes(self) -> Iterator[WorkflowNode]:
        return (node for node in self._nodes.values() if node.is_invocation)

    def __repr__(self) -> str:
        return (
            f"<WorkflowDefinition {self.name!r} schema {self.schema_version}, "
            f"{len(self._nodes)} nodes, {len(self._edges)} edges, "
            f"{len(self._exposed)} inputs>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowDefinition):
            return NotImplemented
        return bool(self._data == other._data)

    def __hash__(self) -> int:
        return hash(json.dumps(self._data, sort_keys=True, default=str))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# -- parsing -------------------------------------------------------------------------------


def _parse_nodes(raw: Any) -> dict[str, WorkflowNode]:
    """The workflow's nodes by id, each checked (unique id, type, data, inputs)."""
    if raw is None:
        raise WorkflowError("workflow has no 'nodes' list")
    if not isinstance(raw, list):
        raise WorkflowError(f"workflow 'nodes' must be a list, got {type(raw).__name__}")
    nodes: dict[str, WorkflowNode] = {}
    for index, item in enumerate(raw):
        node = _parse_node(f"node {_where(index, item)}", item, nodes)
        nodes[node.id] = node
    return nodes


def _parse_node(where: str, item: Any, earlier: Mapping[str, WorkflowNode]) -> WorkflowNode:
    """One node of the 'nodes' list; ``earlier`` holds the nodes before it (ids must differ)."""
    if not isinstance(item, Mapping):
        raise WorkflowError(f"{where} is not an object")
    node_id = item.get("id")
    if not isinstance(node_id, str) or not node_id.strip():
        raise WorkflowError(f"{where} has no 'id' string")
    if node_id in earlier:
        raise WorkflowError(f"{where}: the id {node_id!r} is used by two nodes")
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise WorkflowError(f"{where} has no 'type' (invocation, notes, connector ...)")
    data = item.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise WorkflowError(f"{where}: 'data' must be an object")
    if kind != "invocation":
        return WorkflowNode(id=node_id, kind=kind, type=kind, label=_text(data.get("label")))
    node_type = data.get("type")
    if not isinstance(node_type, str) or not node_type:
        raise WorkflowError(f"{where}: an invocation node needs data.type (e.g. 'add')")
    inputs = _parse_inputs(where, data.get("inputs", {}))
    use_cache = data.get("useCache")
    is_intermediate = data.get("isIntermediate")
    return WorkflowNode(
        id=node_id,
        kind=kind,
        type=node_type,
        label=_text(data.get("label")),
        version=_text(data.get("version")),
        is_intermediate=is_intermediate if isinstance(is_intermediate, bool) else False,
        use_cache=use_cache if isinstance(use_cache, bool) else None,
        inputs=MappingProxyType(inputs),
    )


def _parse_inputs(where: str, raw_inputs: Any) -> dict[str, NodeInput]:
    """An invocation node's ``data.inputs`` by name (absent or null means none)."""
    if raw_inputs is None:
        raw_inputs = {}
    if not isinstance(raw_inputs, Mapping):
        raise WorkflowError(f"{where}: data.inputs must be an object")
    inputs: dict[str, NodeInput] = {}
    for name, spec in raw_inputs.items():
        if not isinstance(name, str) or not name:
            raise WorkflowError(f"{where}: input names must be non-empty strings")
        if not isinstance(spec, Mapping):
            raise WorkflowError(f"{where}: input {name!r} must be an object")
        inputs[name] = NodeInput(
            name=name,
            label=_text(spec.get("label")),
            description=_text(spec.get("description")),
            value=spec.get("value", UNSET),
        )
    return inputs


def _parse_edges(raw: Any, nodes: Mapping[str, WorkflowNode]) -> list[WorkflowEdge]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WorkflowError(f"workflow 'edges' must be a list, got {type(raw).__name__}")
    edges = []
    for index, item in enumerate(raw):
        where = f"edge {_where(index, item)}"
        if not isinstance(item, Mapping):
            raise WorkflowError(f"{where} is not an object")
        edge_type = item.get("type", "default")
        source, target = item.get("source"), item.get("target")
        if not isinstance(source, str) or not isinstance(target, str):
            raise WorkflowError(f"{where} needs 'source' and 'target' node ids")
        for end, node_id in (("source", source), ("target", target)):
            if node_id not in nodes:
                raise WorkflowError(f"{where}: its {end} {node_id!r} is not a node of the workflow")
        source_handle = item.get("sourceHandle")
        target_handle = item.get("targetHandle")
        if edge_type == "default":
            if not isinstance(source_handle, str) or not source_handle:
                raise WorkflowError(f"{where} ({source} -> {target}) has no sourceHandle")
            if not isinstance(target_handle, str) or not target_handle:
                raise WorkflowError(f"{where} ({source} -> {target}) has no targetHandle")
            target_node = nodes[target]
            if target_node.is_invocation and target_handle not in target_node.inputs:
                raise WorkflowError(
                    f"{where} ({source}.{source_handle} -> {target}.{target_handle}) feeds "
                    f"{target_handle!r}, which node {target!r} ({target_node.type}) does not have"
                )
        ident = item.get("id")
        edges.append(
            WorkflowEdge(
                id=ident if isinstance(ident, str) else f"edge-{index}",
                type=edge_type if isinstance(edge_type, str) else "default",
                source=source,
                target=target,
                source_handle=source_handle if isinstance(source_handle, str) else None,
                target_handle=target_handle if isinstance(target_handle, str) else None,
            )
        )
    return edges


def _check_target(
    where: str, node_id: Any, field_name: Any, nodes: Mapping[str, WorkflowNode]
) -> tuple[str, str]:
    if not isinstance(node_id, str) or not isinstance(field_name, str):
        raise WorkflowError(f"{where} needs a nodeId and a fieldName")
    node = nodes.get(node_id)
    if node is None:
        raise WorkflowError(f"{where} points to node {node_id!r}, which is not in the workflow")
    if not node.is_invocation:
        raise WorkflowError(f"{where} points to {node.kind} node {node_id!r}, which has no inputs")
    if field_name not in node.inputs:
        raise WorkflowError(
            f"{where} points to field {field_name!r} of node {node_id!r} ({node.type}), which "
            f"has no such input (it has {sorted(node.inputs)})"
        )
    return node_id, field_name


def _parse_exposed(
    data: Mapping[str, Any], nodes: Mapping[str, WorkflowNode]
) -> tuple[list[ExposedField], Literal["form", "exposedFields", "none"]]:
    form = data.get("form")
    from_form = _form_fields(form, nodes) if form is not None else []
    if from_form:
        return from_form, "form"
    raw = data.get("exposedFields", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise WorkflowError(f"workflow 'exposedFields' must be a list, got {type(raw).__name__}")
    exposed: list[ExposedField] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(raw):
        where = f"exposedFields[{index}]"
        if not isinstance(item, Mapping):
            raise WorkflowError(f"{where} is not an object")
        key = _check_target(where, item.get("nodeId"), item.get("fieldName"), nodes)
        if key not in seen:
            seen.add(key)
            exposed.append(ExposedField(node_id=key[0], field_name=key[1]))
    return exposed, ("exposedFields" if exposed else "none")


def _form_fields(form: Any, nodes: Mapping[str, WorkflowNode]) -> list[ExposedField]:
    """The node fields the workflow's form shows, in form order (first occurrence wins)."""
    found = _form_root(form)
    if found is None:
        return []
    elements, root_id = found
    result: list[ExposedField] = []
    seen: set[tuple[str, str]] = set()
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(element_id: str, parent: str | None) -> None:
        if element_id in visiting:
            raise WorkflowError(f"workflow form element {element_id!r} contains itself (a cycle)")
        if element_id in done:
            return
        where, kind, element_data = _form_element(elements, element_id, parent)
        if kind == "container":
            visiting.add(element_id)
            for child in _container_children(where, element_data):
                visit(child, element_id)
            visiting.discard(element_id)
        elif kind == "node-field":
            field = _node_field(where, element_id, element_data, nodes)
            if (field.node_id, field.field_name) not in seen:
                seen.add((field.node_id, field.field_name))
                result.append(field)
        elif kind not in ("heading", "text", "divider"):
            raise WorkflowError(f"{where} has an unknown type {kind!r}")
        done.add(element_id)

    visit(root_id, None)
    return result


def _form_root(form: Any) -> tuple[Mapping[str, Any], str] | None:
    """The form's elements and root element id, or None for a form without elements."""
    if not isinstance(form, Mapping):
        raise WorkflowError(f"workflow 'form' must be an object, got {type(form).__name__}")
    elements = form.get("elements")
    if elements is None or (isinstance(elements, Mapping) and not elements):
        return None
    if not isinstance(elements, Mapping):
        raise WorkflowError("workflow form.elements must be an object of elements by id")
    root_id = form.get("rootElementId", "root")
    if not isinstance(root_id, str) or root_id not in elements:
        raise WorkflowError(f"workflow form's root element {root_id!r} is not in form.elements")
    return elements, root_id


def _form_element(
    elements: Mapping[str, Any], element_id: str, parent: str | None
) -> tuple[str, Any, Any]:
    """A form element's description for errors, its type and its data, checked to exist."""
    element = elements.get(element_id)
    where = f"form element {element_id!r}"
    if element is None:
        raise WorkflowError(
            f"form container {parent!r} lists child {element_id!r}, which is not in form.elements"
        )
    if not isinstance(element, Mapping):
        raise WorkflowError(f"{where} is not an object")
    return where, element.get("type"), element.get("data")


def _container_children(where: str, element_data: Any) -> Iterator[str]:
    """A container element's child element ids, each checked as it is reached."""
    if not isinstance(element_data, Mapping) or not isinstance(
        element_data.get("children", []), list
    ):
        raise WorkflowError(f"{where} is a container without a data.children list")
    for child in element_data.get("children", []):
        if not isinstance(child, str):
            raise WorkflowError(f"{where} lists a child that is not an element id: {child!r}")
        yield child


def _node_field(
    where: str, element_id: str, element_data: Any, nodes: Mapping[str, WorkflowNode]
) -> ExposedField:
    """The exposed field a node-field element shows, checked against the nodes."""
    if not isinstance(element_data, Mapping):
        raise WorkflowError(f"{where} is a node-field without data")
    ident = element_data.get("fieldIdentifier")
    if not isinstance(ident, Mapping):
        raise WorkflowError(f"{where} has no data.fieldIdentifier")
    node_id, field_name = _check_target(where, ident.get("nodeId"), ident.get("fieldName"), nodes)
    settings = element_data.get("settings")
    show = element_data.get("showDescription", True)
    return ExposedField(
        node_id=node_id,
        field_name=field_name,
        element_id=element_id,
        settings=MappingProxyType(dict(settings)) if isinstance(settings, Mapping) else None,
        show_description=show if isinstance(show, bool) else True,
    )
