"""WorkflowHandle: one set of input values for a workflow, ready to become a graph.

A handle copies what it needs from its :class:`WorkflowDefinition` and never writes back:
many handles of one definition (one per request in a web backend) never affect each other.
Values go through the field system when set, so a wrong type or an out-of-range value fails
at ``set()`` with a :class:`~invokeai_client.errors.ValidationError` naming the input.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import difflib
import logging
import math
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._checks import check_bool
from .._constants import DEFAULT_ORIGIN
from .._limits import short_repr
from ..errors import ValidationError, WorkflowError
from ..fields._base import UNSET, ImageResolver, IvkField
from ..fields.collections import CollectionField
from ..fields.models import ModelIdentifierField
from ..fields.primitives import FloatField, IntegerField, NumberField, StringField
from ..fields.registry import FieldRegistry, default_registry
from ..fields.resources import BoardField, ImageField, LocalImage
from ..fields.schema import InvocationSchemas
from ..runs._room import check_room
from ..types.batch import Batch, EnqueueBody
from ..types.queue import is_batch_item
from . import graph as _graph
from .definition import ExposedField, WorkflowDefinition, WorkflowNode

if TYPE_CHECKING:
    from ..runs import BatchRun, WorkflowRun
    from ..types.boards import Board, BoardRef
    from ._client import WorkflowClient
    from .model_sync import ModelSyncReport

log = logging.getLogger("invokeai_client")

InputKey = int | str


@dataclass(frozen=True)
class IvkWorkflowInput:
    """One input of the workflow's form: where it lives and its typed field.

    ``index`` is its position in GUI order, ``label`` what the GUI shows, ``field`` the
    :class:`~invokeai_client.fields.IvkField` holding the value (``field.value``).
    """

    index: int
    label: str
    node_id: str
    field_name: str
    field: IvkField[Any]
    required: bool
    description: str
    connected: bool = False
    """Fed by an edge: a literal value would be ignored, so setting one is refused."""

    @property
    def key(self) -> str:
        """``"node_id.field_name"``, the input's unambiguous key."""
        return f"{self.node_id}.{self.field_name}"

    @property
    def value(self) -> Any:
        return self.field.value

    @property
    def type_name(self) -> str:
        return type(self.field).__name__

    def __repr__(self) -> str:
        return (
            f"IvkWorkflowInput({self.index}, {self.label!r}, {self.key}, "
            f"{self.type_name}, value={self.field.value!r})"
        )


class WorkflowHandle:
    """Input values for one workflow, plus the graph, batch, upload and sync operations.

    Get one from ``await client.workflows.load(...)`` (typed by the server's schemas) or make
    one offline: ``WorkflowHandle(WorkflowDefinition.from_file(path))`` (types inferred from
    the workflow's values; pass ``schemas=InvocationSchemas.bundled()`` for 6.14.2 types).
    """

    _preflighting = False  # True while submit checks a throw-away build (local images pass)

    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        schemas: InvocationSchemas | None = None,
        client: WorkflowClient | None = None,
        registry: FieldRegistry | None = None,
    ) -> None:
        if not isinstance(definition, WorkflowDefinition):
            raise WorkflowError(
                f"WorkflowHandle needs a WorkflowDefinition, got {type(definition).__name__}"
            )
        self._definition = definition
        self._schemas = schemas
        self._client = client
        self._registry = registry or default_registry
        self._fields: dict[tuple[str, str], IvkField[Any]] = {}
        self._explicit: builtins.set[tuple[str, str]] = builtins.set()
        self._node_options: dict[str, dict[str, bool]] = {}
        self._uploads: dict[LocalImage, str] = {}
        self._uploaded: list[str] = []
        self._board_ids: dict[str, str] = {}  # board input value (name or id) -> checked id
        self._generated: dict[str, list[Any]] = {}
        self._fed = self._fed_inputs()
        self._inputs = tuple(
            self._make_input(index, exposed)
            for index, exposed in enumerate(definition.exposed_fields)
        )

    # -- basics ----------------------------------------------------------------------------

    @property
    def definition(self) -> WorkflowDefinition:
        """The immutable workflow this handle was made from."""
        return self._definition

    @property
    def schemas(self) -> InvocationSchemas | None:
        """The server's node schemas typing this handle (None: types inferred from values)."""
        return self._schemas

    @property
    def client(self) -> WorkflowClient | None:
        return self._client

    @property
    def name(self) -> str:
        return self._definition.name

    @property
    def inputs(self) -> list[IvkWorkflowInput]:
        """The form's inputs in the order the GUI shows them."""
        return list(self._inputs)

    def __iter__(self) -> Iterator[IvkWorkflowInput]:
        return iter(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def __repr__(self) -> str:
        typed = self._schemas.source if self._schemas is not None else "types inferred"
        return f"<WorkflowHandle {self.name!r}: {len(self._inputs)} inputs, {typed}>"

    def copy(self) -> WorkflowHandle:
        """An independent handle with the same values (uploads are not shared)."""
        other = WorkflowHandle.__new__(WorkflowHandle)
        other._definition = self._definition
        other._schemas = self._schemas
        other._client = self._client
        other._registry = self._registry
        other._fields = {}
        for key, field in self._fields.items():
            clone = field.model_copy()
            clone._load(copy.deepcopy(field.value))
            other._fields[key] = clone
        other._explicit = builtins.set(self._explicit)
        other._node_options = {k: dict(v) for k, v in self._node_options.items()}
        other._uploads = {}
        other._uploaded = []
        other._board_ids = dict(self._board_ids)
        other._generated = {k: list(v) for k, v in self._generated.items()}
        other._fed = self._fed
        other._inputs = tuple(
            IvkWorkflowInput(
                index=i.index,
                label=i.label,
                node_id=i.node_id,
                field_name=i.field_name,
                field=other._fields[(i.node_id, i.field_name)],
                required=i.required,
                description=i.description,
                connected=i.connected,
            )
            for i in self._inputs
        )
        return other

    __copy__ = copy

    # -- fields ----------------------------------------------------------------------------

    def _fed_inputs(self) -> dict[tuple[str, str], str]:
        """Inputs fed by an edge (from a node of the graph or a batch node): who feeds them."""
        fed: dict[tuple[str, str], str] = {}
        for source, source_field, target, target_field in _graph.data_edges(self):
            fed[(target, target_field)] = f"{source}.{source_field}"
        nodes = self._definition.nodes
        for node in nodes.values():
            if node.is_invocation and node.type in _graph.BATCH_COLLECTION_INPUT:
                handle_name = _graph.BATCH_OUTPUT_HANDLE.get(node.type, "value")
                for batch_target in _graph._batch_targets(self, node.id, handle_name):
                    fed[batch_target] = f"batch node {node.id}"
        return fed

    def _new_field(self, node: WorkflowNode, name: str, label: str = "") -> IvkField[Any]:
        spec = node.inputs.get(name)
        raw = spec.value if spec is not None else UNSET
        field: IvkField[Any] | None = None
        if self._schemas is not None:
            field = self._schemas.field(node.type, name, registry=self._registry, node_id=node.id)
        if field is None:
            field = self._registry.infer(raw, node_id=node.id, node_type=node.type, name=name)
        field.label = label or (spec.label if spec is not None else "") or field.title or name
        if spec is not None and spec.description:
            field.description = spec.description
        try:
            # Normalise a valid value (a float field's ``2`` becomes ``2.0``); keep an invalid
            # one as it is: problems() reports it, the load does not fail.
            field._load(copy.deepcopy(field.check(raw)))
        except ValidationError:
            field._load(copy.deepcopy(raw))
        return field

    def _make_input(self, index: int, exposed: ExposedField) -> IvkWorkflowInput:
        node = self._definition.nodes[exposed.node_id]
        field = self._new_field(node, exposed.field_name)
        _apply_form_settings(field, exposed.settings)
        key = (exposed.node_id, exposed.field_name)
        self._fields[key] = field
        connected = key in self._fed
        return IvkWorkflowInput(
            index=index,
            label=field.label,
            node_id=exposed.node_id,
            field_name=exposed.field_name,
            field=field,
            required=field.required and not connected,
            description=field.description,
            connected=connected,
        )

    def _field_at(self, node_id: str, name: str, *, create: bool = True) -> IvkField[Any] | None:
        key = (node_id, name)
        field = self._fields.get(key)
        if field is None and create:
            node = self._definition.nodes.get(node_id)
            if node is None or not node.is_invocation:
                return None
            known = name in node.inputs
            if not known and self._schemas is not None:
                node_schema = self._schemas.get(node.type)
                known = node_schema is not None and name in node_schema.inputs
            if not known:
                return None
            field = self._new_field(node, name)
            self._fields[key] = field
        return field

    # -- keys ------------------------------------------------------------------------------

    def input(self, key: InputKey | IvkWorkflowInput) -> IvkWorkflowInput:
        """The form input for ``key``: its index, its label or ``"node_id.field_name"``."""
        found = self._find(key)
        if isinstance(found, IvkWorkflowInput):
            return found
        raise ValidationError(
            f"{key!r} is a node input that is not in the workflow's form; use field({key!r}) "
            "to reach it",
            input=str(key),
            rule="form input",
        )

    def field(self, key: InputKey | IvkWorkflowInput) -> IvkField[Any]:
        """The typed field for ``key`` (form inputs, or any node input by
        ``"node_id.field_name"``)."""
        found = self._find(key)
        return found.field if isinstance(found, IvkWorkflowInput) else found

    def _find(self, key: Any) -> IvkWorkflowInput | IvkField[Any]:
        if isinstance(key, IvkWorkflowInput):
            if key.index < len(self._inputs) and self._inputs[key.index].key == key.key:
                return self._inputs[key.index]
            return self._find(key.key)
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise ValidationError(
                f"an input key is an index, a label or 'node_id.field_name', got "
                f"{type(key).__name__} {short_repr(key)}",
                input=short_repr(key),
                rule="input key",
            )
        if isinstance(key, int):
            if 0 <= key < len(self._inputs):
                return self._inputs[key]
            raise ValidationError(
                f"input index {short_repr(key)} is out of range: workflow {self.name!r} has "
                f"{len(self._inputs)} inputs (0..{len(self._inputs) - 1})\n{self._listing()}",
                input=short_repr(key),
                rule="known input",
            )
        by_key = [i for i in self._inputs if i.key == key]
        if by_key:
            return by_key[0]
        by_label = [i for i in self._inputs if i.label == key]
        if not by_label:
            folded = key.casefold().strip()
            by_label = [i for i in self._inputs if i.label.casefold().strip() == folded]
        if len(by_label) == 1:
            return by_label[0]
        if len(by_label) > 1:
            listing = "\n".join(f"  {i.index}: {i.label!r} ({i.key})" for i in by_label)
            raise ValidationError(
                f"input label {key!r} is ambiguous in workflow {self.name!r}; use an index or "
                f"'node_id.field_name':\n{listing}",
                input=key,
                rule="unambiguous input key",
            )
        if "." in key:
            node_id, name = key.rsplit(".", 1)
            field = self._field_at(node_id, name)
            if field is not None:
                return field
        close = difflib.get_close_matches(
            key, [i.label for i in self._inputs] + [i.key for i in self._inputs], n=3
        )
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValidationError(
            f"workflow {self.name!r} has no input {key!r}.{hint} Its inputs are:\n"
            f"{self._listing()}",
            input=key,
            rule="known input",
        )

    def _listing(self) -> str:
        if not self._inputs:
            return "  (none: the workflow's form exposes no inputs; use 'node_id.field_name')"
        return "\n".join(f"  {i.index}: {i.label!r} ({i.key}, {i.type_name})" for i in self._inputs)

    # -- values ----------------------------------------------------------------------------

    def set(self, key: InputKey | IvkWorkflowInput, value: Any) -> WorkflowHandle:
        """Set an input's value (checked now; returns the handle for chaining)."""
        field = self._settable(key)
        field.set(value)
        self._explicit.add((field.node_id, field.name))
        return self

    def update(
        self, values: Mapping[InputKey, Any] | Iterable[tuple[InputKey, Any]] = (), **by_key: Any
    ) -> WorkflowHandle:
        """Set several inputs at once (all are checked before any is changed)."""
        pairs = list(values.items() if isinstance(values, Mapping) else values)
        pairs.extend(by_key.items())
        checked: list[tuple[IvkField[Any], Any]] = []
        for key, value in pairs:
            field = self._settable(key)
            checked.append((field, field.check(value)))
        for field, value in checked:
            field._load(value)
            self._explicit.add((field.node_id, field.name))
        return self

    def _settable(self, key: InputKey | IvkWorkflowInput) -> IvkField[Any]:
        """The field of an input that takes a value: not one fed by an edge."""
        field = self.field(key)
        feeder = self._fed.get((field.node_id, field.name))
        if feeder is not None:
            raise ValidationError(
                f"input {field.display_name()} is fed by {feeder}; a value set here would be "
                "ignored",
                input=field.display_name(),
                rule="not connected",
            )
        return field

    def get(self, key: InputKey | IvkWorkflowInput) -> Any:
        """The current value of an input (``UNSET`` when it has none)."""
        return self.field(key).value

    def unset(self, key: InputKey | IvkWorkflowInput) -> WorkflowHandle:
        """Remove an input's value: the server's default applies."""
        field = self.field(key)
        field.unset()
        self._explicit.add((field.node_id, field.name))
        return self

    def values(self) -> dict[str, Any]:
        """``{label: value}`` of the form's inputs (keys are ``node_id.field_name`` where
        labels repeat)."""
        counts: dict[str, int] = {}
        for i in self._inputs:
            counts[i.label] = counts.get(i.label, 0) + 1
        return {(i.label if counts[i.label] == 1 else i.key): i.field.value for i in self._inputs}

    def is_explicit(self, key: InputKey | IvkWorkflowInput) -> bool:
        """Whether the value was set through this handle (model sync never overrides those)."""
        field = self.field(key)
        return (field.node_id, field.name) in self._explicit

    def set_node(
        self, node_id: str, *, use_cache: bool | None = None, is_intermediate: bool | None = None
    ) -> WorkflowHandle:
        """Change a node's cache use or whether its images are intermediate (gallery-hidden)."""
        node = self._definition.nodes.get(node_id)
        if node is None or not node.is_invocation:
            raise ValidationError(
                f"workflow {self.name!r} has no invocation node {node_id!r}",
                input=node_id,
                rule="known node",
            )
        options = self._node_options.setdefault(node_id, {})
        for name, flag in (("use_cache", use_cache), ("is_intermediate", is_intermediate)):
            if flag is None:
                continue
            if not isinstance(flag, bool):
                raise ValidationError(
                    f"{name} must be True or False, got {flag!r}", input=name, rule="boolean"
                )
            options[name] = flag
        return self

    # -- validation ------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Everything that would stop this workflow from running (empty when it can run)."""
        try:
            graph = _graph.build_graph(
                self, board=None, batch_targets=builtins.set(), validate=False
            )
        except (WorkflowError, ValidationError) as exc:
            return [str(exc)]
        targets = {
            (node_id, field_name) for node_id, field_name in self._fed if node_id in graph["nodes"]
        }
        return self._graph_problems(graph["nodes"], graph["edges"], targets)

    def _graph_problems(
        self,
        nodes: Mapping[str, Mapping[str, Any]],
        edges: Sequence[Mapping[str, Any]],
        batch_targets: builtins.set[tuple[str, str]],
    ) -> list[str]:
        problems: list[str] = []
        connected = {(e["destination"]["node_id"], e["destination"]["field"]) for e in edges}
        fed_by_batch = {key for key, feeder in self._fed.items() if feeder.startswith("batch")}
        for key, field in self._fields.items():
            if key in connected or key in batch_targets or key in fed_by_batch:
                continue
            problems.extend(field.problems())
            pending = field.local_images() if isinstance(field, ImageField) else []
            if self._preflighting:
                pending = []  # submit uploads them after the checks
            if pending and any(image not in self._uploads for image in pending):
                problems.append(
                    f"input {field.display_name()}: holds local image data that is uploaded "
                    "at submit time (call 'await handle.upload_images()' first)"
                )
        if self._schemas is None:
            return problems
        for node_id, graph_node in nodes.items():
            node_schema = self._schemas.get(str(graph_node.get("type")))
            if node_schema is None:
                continue
            for name, prop in node_schema.inputs.items():
                if not prop.get("orig_required"):
                    continue
                key = (node_id, name)
                if key in connected or key in batch_targets or key in fed_by_batch:
                    continue
                if graph_node.get(name) is None:
                    known = self._fields.get(key)
                    where = known.display_name() if known is not None else repr(f"{node_id}.{name}")
                    node = self._definition.nodes[node_id]
                    problems.append(
                        f"input {where}: {node.type} needs a value or a connection for {name!r}"
                    )
        return problems

    # -- graph and batch -------------------------------------------------------------------

    def build_graph(
        self, *, board: str | Board | None = None, validate: bool = True
    ) -> dict[str, Any]:
        """The API graph InvokeAI's GUI would enqueue for this workflow and these values.

        ``board`` is the auto-add board, a board id or :class:`Board` (no server is asked
        here, so names are resolved only by :meth:`submit`): board inputs left on ``"auto"``
        save there (else nowhere, like the GUI with "Auto-add: none"). With ``validate`` the
        build fails with a :class:`ValidationError` listing every missing required input or
        bad value.
        """
        return _graph.build_graph(
            self, board=_board_id(board), batch_targets=builtins.set(), validate=validate
        )

    def build_batch(
        self,
        *,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        batch_id: str | None = None,
        origin: str | None = DEFAULT_ORIGIN,
        destination: str | None = None,
        prepend: bool = False,
        board: str | Board | None = None,
        validate: bool = True,
        attach_workflow: bool = True,
    ) -> dict[str, Any]:
        """The body of ``POST /api/v1/queue/{queue_id}/enqueue_batch`` (nothing is sent).

        ``data`` is ``Batch.data``: a list of groups; the groups are combined as a cartesian
        product and the datums inside one group are zipped. A datum is
        ``{"node_path", "field_name", "items"}`` or ``{"input": <key>, "items"}``; every item
        is checked with the input's field type (the server would accept a wrong-typed item
        and then stall its whole queue on it). The workflow's batch and generator nodes add
        their groups first. ``runs`` repeats everything; ``batch_id`` defaults to a new UUID
        so the caller can watch the batch before it is enqueued.
        """
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ValidationError(
                f"runs must be an integer >= 1, got {short_repr(runs)}", input="runs", rule=">= 1"
            )
        if batch_id is None:
            batch_id = str(uuid.uuid4())
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise ValidationError(
                f"batch_id must be a non-empty string, got {short_repr(batch_id)}",
                input="batch_id",
                rule="non-empty",
            )
        if not isinstance(prepend, bool):
            raise ValidationError(
                f"prepend must be True or False, got {short_repr(prepend)}",
                input="prepend",
                rule="boolean",
            )
        for name, text in (("origin", origin), ("destination", destination)):
            if text is not None and not isinstance(text, str):
                raise ValidationError(
                    f"{name} must be a string, got {short_repr(text)}", input=name, rule="string"
                )
        user_groups = self._user_data(data)
        for index, group in enumerate(user_groups):
            sizes = {len(d["items"]) for d in group if isinstance(d["items"], Sized)}
            if len(sizes) > 1:
                raise ValidationError(
                    f"batch data group {index} zips lists of different lengths "
                    f"{sorted(sizes)}; the datums of one group must have the same number of "
                    "items",
                    input=f"data[{index}]",
                    rule="same length in a group",
                )
        targets = {(d["node_path"], d["field_name"]) for group in user_groups for d in group}
        graph = _graph.build_graph(
            self, board=_board_id(board), batch_targets=targets, validate=validate
        )
        groups = _graph.batch_node_data(self, graph) + [
            [
                self._batch_datum(
                    d["node_path"], d["field_name"], d["items"], where="data", graph=graph
                )
                for d in group
            ]
            for group in user_groups
        ]
        batch: dict[str, Any] = {"batch_id": batch_id, "graph": graph, "runs": runs, "data": groups}
        if origin is not None:
            batch["origin"] = origin
        if destination is not None:
            batch["destination"] = destination
        if attach_workflow:
            batch["workflow"] = _graph.workflow_for_batch(self)
        return EnqueueBody(batch=Batch(**batch), prepend=prepend).to_dict()

    def batch_datum(self, key: InputKey | IvkWorkflowInput, items: Iterable[Any]) -> dict[str, Any]:
        """A checked ``Batch.data`` datum that varies one input over ``items``."""
        field = self.field(key)
        return self._batch_datum(field.node_id, field.name, items, where=field.display_name())

    def _user_data(self, data: Any) -> list[list[dict[str, Any]]]:
        if data is None:
            return []
        if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
            raise ValidationError(
                "data must be a list of groups, each a list of {'node_path', 'field_name', "
                f"'items'}} datums; got {type(data).__name__}",
                input="data",
                rule="list of groups",
            )
        groups: list[list[dict[str, Any]]] = []
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
            datums = []
            for position, datum in enumerate(group):
                where = f"data[{index}][{position}]"
                if not isinstance(datum, Mapping):
                    raise ValidationError(
                        f"{where} must be a datum object", input=where, rule="datum"
                    )
                node_path: Any
                field_name: Any
                if "input" in datum:
                    field = self.field(datum["input"])
                    node_path, field_name = field.node_id, field.name
                else:
                    node_path, field_name = datum.get("node_path"), datum.get("field_name")
                if not isinstance(node_path, str) or not isinstance(field_name, str):
                    raise ValidationError(
                        f"{where} needs 'node_path' and 'field_name' (or 'input')",
                        input=where,
                        rule="datum",
                    )
                datums.append(
                    {"node_path": node_path, "field_name": field_name, "items": datum.get("items")}
                )
            groups.append(datums)
        return groups

    def _batch_datum(
        self,
        node_path: str,
        field_name: str,
        items: Any,
        *,
        where: str,
        graph: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        node = self._definition.nodes.get(node_path)
        if node is None or not node.is_executable:
            raise ValidationError(
                f"{where}: node_path {node_path!r} is not a node of the graph",
                input=node_path,
                rule="node in graph",
            )
        found = self._field_at(node_path, field_name)
        if found is None:
            raise ValidationError(
                f"{where}: node {node_path!r} ({node.type}) has no input {field_name!r}",
                input=f"{node_path}.{field_name}",
                rule="known input",
            )
        field = found
        if graph is not None:
            for edge in graph.get("edges", []):
                dest = edge["destination"]
                if dest["node_id"] == node_path and dest["field"] == field_name:
                    raise ValidationError(
                        f"{where}: input {field.display_name()} is fed by an edge; batch items "
                        "for it would be ignored",
                        input=field.display_name(),
                        rule="not connected",
                    )
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise ValidationError(
                f"{where}: items for {field.display_name()} must be a list, got "
                f"{type(items).__name__}",
                input=field.display_name(),
                rule="list of items",
            )
        checked = []
        for position, item in enumerate(items):
            try:
                value = field.check(item)
                if value is UNSET:
                    raise ValidationError("no value", input=field.display_name(), rule="value")
                api_value = field.api_value(value, self._image_resolver(strict=True))
                if not is_batch_item(api_value):
                    raise ValidationError(
                        f"input {field.display_name()}: a {field.kind} cannot be varied in a "
                        "batch (InvokeAI batches carry numbers, strings, images and videos); "
                        "set it per run instead",
                        input=field.display_name(),
                        rule="batchable type",
                    )
                checked.append(copy.deepcopy(api_value))
            except ValidationError as exc:
                message = str(exc).removeprefix("input ")
                raise ValidationError(
                    f"{where}: item {position} for {message}",
                    input=exc.input or field.display_name(),
                    rule=exc.rule,
                ) from None
        if not checked:
            raise ValidationError(
                f"{where}: items for {field.display_name()} must not be empty",
                input=field.display_name(),
                rule="non-empty",
            )
        return {"node_path": node_path, "field_name": field_name, "items": checked}

    def to_workflow_dict(self) -> dict[str, Any]:
        """The workflow JSON with this handle's values, as the GUI would save it."""
        return _graph.gui_workflow(self)

    # -- values in API form ----------------------------------------------------------------

    def _api_value(self, node: WorkflowNode, name: str) -> Any:
        field = self._fields.get((node.id, name))
        if field is not None:
            return copy.deepcopy(field.to_api(self._image_resolver(strict=True)))
        spec = node.inputs.get(name)
        return copy.deepcopy(spec.value) if spec is not None else UNSET

    def _image_resolver(self, *, strict: bool) -> ImageResolver:
        def resolve(image: Any) -> Any:
            name = self._uploads.get(image)
            if name is None and self._preflighting:
                return {"image_name": "not-uploaded-yet.png"}  # a throw-away build
            if name is None:
                if not strict:
                    return UNSET
                raise ValidationError(
                    f"{image!r} has not been uploaded yet; call 'await handle.upload_images()' "
                    "(submit does it for you)",
                    input=repr(image),
                    rule="uploaded",
                )
            return {"image_name": name}

        return resolve

    def _is_board_input(self, node: WorkflowNode, name: str) -> bool:
        field = self._fields.get((node.id, name))
        if field is not None:
            return isinstance(field, BoardField)
        if self._schemas is not None:
            node_schema = self._schemas.get(node.type)
            if node_schema is not None:
                prop = node_schema.inputs.get(name)
                return prop is not None and "/BoardField" in repr(prop)
        return name == "board"

    # -- local images ----------------------------------------------------------------------

    def local_images(self) -> list[tuple[IvkField[Any], LocalImage]]:
        """Local image values (paths, bytes, PIL images) that are not uploaded yet."""
        pending = []
        for field in self._fields.values():
            for image in _local_images(field):
                if image not in self._uploads:
                    pending.append((field, image))
        return pending

    @property
    def uploads(self) -> list[str]:
        """Names of the images this handle uploaded (deleted by :meth:`delete_uploads`)."""
        return list(self._uploaded)

    async def upload_images(
        self, *, board: Any = None, intermediate: bool = True
    ) -> builtins.list[str]:
        """Upload every local image value once, through ``client.images.upload`` (file reads
        and PIL encoding off the event loop; anything that is not an image is refused before
        it is sent).

        Cleanup policy: the handle owns these uploads. They are reused by later builds and
        submits of this handle, and deleted by :meth:`delete_uploads` or when an
        ``async with handle:`` block ends; nothing else deletes them. They are uploaded as
        ``user`` images, intermediate (hidden from the gallery) unless ``intermediate=False``,
        on ``board`` (an id, a Board or a name) if given. Returns the new image names.
        """
        names = []
        for _field, image in self.local_images():
            if image not in self._uploads:
                names.append(await self._upload(image, board=board, intermediate=intermediate))
        return names

    async def _upload(
        self, image: LocalImage, *, board: Any = None, intermediate: bool = True
    ) -> str:
        # The one upload path of a handle: records the name for reuse and for cleanup.
        import anyio

        client = self._require_client("upload images")
        source = image.source
        if isinstance(source, Path):
            source = await anyio.to_thread.run_sync(os.path.expanduser, source)
        dto = await client.images.upload(
            source, category="user", board=board, intermediate=intermediate
        )
        self._uploads[image] = dto.image_name
        self._uploaded.append(dto.image_name)
        return dto.image_name

    async def _upload_batch_items(
        self, groups: builtins.list[builtins.list[dict[str, Any]]]
    ) -> None:
        """Upload the local images among batch items and put their names in their place
        (under the handle's cleanup policy, like the uploads of input values)."""
        for group in groups:
            for datum in group:
                if "input" in datum:
                    field: IvkField[Any] | None = self.field(datum["input"])
                else:
                    node_path, field_name = datum.get("node_path"), datum.get("field_name")
                    if not isinstance(node_path, str) or not isinstance(field_name, str):
                        continue  # build_batch names the problem
                    field = self._field_at(node_path, field_name)
                if not isinstance(field, ImageField):
                    continue
                items = datum.get("items")
                if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
                    continue
                items = builtins.list(items)
                try:
                    checked = [field.check(item) for item in items]
                except ValidationError:
                    continue  # build_batch names the item and the rule
                if not any(isinstance(value, LocalImage) for value in checked):
                    continue
                datum["items"] = [
                    {"image_name": await self._upload(value)}
                    if isinstance(value, LocalImage) else item
                    for item, value in builtins.zip(items, checked, strict=True)
                ]

    async def _resolve_board_inputs(self, client: WorkflowClient) -> None:
        """Turn board inputs set to a board *name* into that board's id (one lookup per
        name and handle), so ``set("Board", "My board")`` saves where the user meant."""
        for field in self._fields.values():
            if not isinstance(field, BoardField) or not isinstance(field.value, dict):
                continue
            ref = field.value.get("board_id")
            if not isinstance(ref, str) or ref in self._board_ids.values():
                continue
            board_id = self._board_ids.get(ref)
            if board_id is None:
                try:
                    board_id = await client.boards.resolve(ref)
                except ValidationError as exc:
                    raise ValidationError(
                        f"input {field.display_name()}: {exc}",
                        input=field.display_name(), rule=exc.rule,
                    ) from None
                self._board_ids[ref] = board_id
            if board_id != ref:
                field.set({"board_id": board_id})

    async def delete_uploads(self) -> None:
        """Delete the images this handle uploaded (already-deleted ones are skipped)."""
        from ..errors import NotFoundError

        if not self._uploaded:
            return
        client = self._require_client("delete uploads")
        while self._uploaded:
            name = self._uploaded[-1]
            with contextlib.suppress(NotFoundError):
                await client.images.delete(name)
            self._uploaded.pop()
            for image, uploaded in builtins.list(self._uploads.items()):
                if uploaded == name:
                    del self._uploads[image]

    async def __aenter__(self) -> WorkflowHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.delete_uploads()

    def _require_client(self, action: str) -> WorkflowClient:
        if self._client is None:
            raise WorkflowError(
                f"cannot {action}: this handle has no client (load it with "
                "'await client.workflows.load(...)' or pass client= to WorkflowHandle)"
            )
        return self._client

    # -- server-backed steps ---------------------------------------------------------------

    async def submit(
        self,
        *,
        board: BoardRef | None = None,
        prepend: bool = False,
        origin: str | None = DEFAULT_ORIGIN,
        destination: str | None = None,
        detach: bool = False,
    ) -> WorkflowRun:
        """Enqueue this workflow once with the current values; returns its run as soon as
        the server has it (``await run`` for the result, ``run.events()`` for progress).

        Local image values are uploaded first. ``board`` is the auto-add board for image
        outputs (a board id, name or :class:`~invokeai_client.types.boards.Board`, resolved
        by ``client.boards.resolve``); ``prepend`` puts the item at the front of the queue.
        A workflow whose batch nodes make several items needs :meth:`submit_batch`.
        Cancelling a task that awaits the run cancels the item on the server unless
        ``detach`` is true.
        """
        client = self._require_client("submit")
        check_bool("detach", detach)
        if self._requests_before_enqueue(board):
            self._preflight(prepend=prepend, origin=origin, destination=destination)
        board_id = await _resolve_board(client, board)
        await self._resolve_board_inputs(client)
        await self.upload_images()
        body = self.build_batch(
            board=board_id, prepend=prepend, origin=origin, destination=destination
        )
        return await client.runs.submit_body(body, detach=detach)

    async def submit_batch(
        self,
        sweep: Mapping[InputKey, Iterable[Any]] | None = None,
        *,
        zip: bool | Sequence[Sequence[InputKey]] = False,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        runs: int = 1,
        board: BoardRef | None = None,
        prepend: bool = False,
        origin: str | None = DEFAULT_ORIGIN,
        destination: str | None = None,
        detach: bool = False,
    ) -> BatchRun:
        """Enqueue every combination of ``sweep`` values in ONE request; returns the batch.

        ``sweep`` maps input keys (index, label or ``"node_id.field_name"``) to the values to
        try. Inputs vary independently (a cartesian product, the first key outermost) unless
        zipped: ``zip=True`` zips all of them (equal lengths), ``zip=[["Seed", "Prompt"]]``
        zips the inputs of each listed group. ``data`` adds raw ``Batch.data`` groups;
        ``runs`` repeats everything. Every value is checked against its input's type before
        anything is sent. ``board`` is the auto-add board, as for :meth:`submit`.
        """
        client = self._require_client("submit a batch")
        check_bool("detach", detach)
        groups = self._sweep_groups(sweep or {}, zip)
        names = self._swept_names(groups)
        if data is not None:
            groups.extend([dict(datum) for datum in group] for group in self._user_data(data))
        if self._requests_before_enqueue(board, groups):
            self._preflight(
                data=groups, runs=runs, prepend=prepend, origin=origin, destination=destination
            )
        board_id = await _resolve_board(client, board)
        await self._resolve_board_inputs(client)
        await self.upload_images()
        await self._upload_batch_items(groups)
        body = self.build_batch(
            data=groups, runs=runs, board=board_id, prepend=prepend, origin=origin,
            destination=destination,
        )
        items = runs * math.prod(len(g[0]["items"]) for g in body["batch"].get("data") or ())
        await check_room(client.context, items)  # refused whole before sending, never cut
        return await client.runs.enqueue(body, detach=detach, names=names)

    def _swept_names(self, groups: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, str]:
        """``"node_id.field_name"`` -> the name results use for it: the sweep's own text key
        (a label, or the full key), else the input's label."""
        names: dict[str, str] = {}
        for group in groups:
            for datum in group:
                key = datum["input"]
                full = self._full_key(key)
                if isinstance(key, str):
                    names[full] = key
                else:
                    found = self._find(key)
                    label = found.label if isinstance(found, IvkWorkflowInput) else ""
                    names[full] = label or full
        taken = Counter(names.values())
        return {full: name if taken[name] == 1 else full for full, name in names.items()}

    def _requests_before_enqueue(
        self, board: Any, groups: Sequence[Sequence[Mapping[str, Any]]] = ()
    ) -> bool:
        """Whether submit will ask the server anything before it enqueues (a board lookup,
        board inputs to resolve, uploads); only then is a throw-away build worth its cost."""
        if board is not None or self.local_images():
            return True
        for field in self._fields.values():
            if (
                isinstance(field, BoardField)
                and isinstance(field.value, dict)
                and field.value.get("board_id") not in self._board_ids.values()
            ):
                return True
        for group in groups:
            for datum in group:
                key = datum.get("input")
                target = self.field(key) if key is not None else self._field_at(
                    str(datum.get("node_path")), str(datum.get("field_name")), create=False
                )
                if isinstance(target, ImageField):
                    return True  # its items may be local files to upload
        return False

    def _preflight(self, **options: Any) -> None:
        """Build the batch once and throw it away, so that everything knowable locally fails
        before any request (board lookups, uploads); local images pass as if uploaded."""
        self._preflighting = True
        try:
            self.build_batch(**options)
        finally:
            self._preflighting = False

    def _sweep_groups(
        self, sweep: Mapping[InputKey, Iterable[Any]], zip: bool | Sequence[Sequence[InputKey]]
    ) -> list[list[dict[str, Any]]]:
        if not isinstance(sweep, Mapping):
            raise ValidationError(
                f"sweep must map input keys to lists of values, got {type(sweep).__name__}",
                input="sweep",
                rule="mapping of key to values",
            )
        keys = {self._full_key(key): key for key in sweep}
        if len(keys) != len(sweep):
            raise ValidationError(
                "sweep names one input twice (under two keys)", input="sweep",
                rule="each input once",
            )
        if zip is True:
            zipped = [list(keys)] if keys else []
        elif zip is False:
            zipped = []
        elif isinstance(zip, (str, bytes, Mapping)) or not isinstance(zip, Sequence):
            raise ValidationError(
                "zip must be True or a list of groups of sweep keys, e.g. [['Seed', 'Prompt']]",
                input="zip",
                rule="list of key groups",
            )
        else:
            zipped = []
            for group in zip:
                if isinstance(group, (str, bytes, int)) or not isinstance(group, Sequence):
                    raise ValidationError(
                        "zip must be True or a list of groups of sweep keys, e.g. "
                        "[['Seed', 'Prompt']]",
                        input="zip",
                        rule="list of key groups",
                    )
                resolved = []
                for key in group:
                    full = self._full_key(key)
                    if full not in keys:
                        raise ValidationError(
                            f"zip names {key!r}, which is not a key of sweep",
                            input=str(key),
                            rule="zip keys come from sweep",
                        )
                    resolved.append(full)
                zipped.append(resolved)
        in_zip = {full for group in zipped for full in group}
        if len(in_zip) != sum(len(group) for group in zipped):
            raise ValidationError("zip lists one input twice", input="zip", rule="each key once")
        groups: list[list[dict[str, Any]]] = []
        done: builtins.set[str] = builtins.set()
        for full in keys:
            if full in done:
                continue
            members = next((group for group in zipped if full in group), [full])
            groups.append([{"input": keys[m], "items": _as_items(sweep[keys[m]], m)}
                           for m in members])
            done.update(members)
        return groups

    def _full_key(self, key: InputKey | IvkWorkflowInput) -> str:
        # The "node_id.field_name" an input key names.
        field = self.field(key)
        return f"{field.node_id}.{field.name}"

    async def sync_models(self) -> ModelSyncReport:
        """Point every model input at a model installed on the server (key, then hash, then
        name + base + type). Values you set on this handle are never replaced; the definition
        is never changed. Raises ModelNotFoundError listing candidates when a model is missing.
        """
        from .model_sync import sync_models

        return await sync_models(self, self._require_client("sync models"))

    async def resolve_generators(self) -> None:
        """Compute the generator nodes that need the server (board images, dynamic prompts)."""
        from .model_sync import resolve_generators

        await resolve_generators(self, self._require_client("resolve generators"))

    def model_fields(self) -> list[ModelIdentifierField]:
        """Every model input of the workflow (form or not) with its current value."""
        found = []
        for node in self._definition.invocation_nodes():
            if not node.is_executable:
                continue
            names = list(node.inputs)
            for name in names:
                if self._schemas is None:
                    spec = node.inputs[name]
                    looks_like_model = isinstance(spec.value, dict) and {"key", "base", "type"} <= (
                        builtins.set(spec.value)
                    )
                    known = isinstance(self._fields.get((node.id, name)), ModelIdentifierField)
                    if not looks_like_model and not known:
                        continue
                field = self._field_at(node.id, name)
                if isinstance(field, ModelIdentifierField):
                    found.append(field)
        return found


async def _resolve_board(client: WorkflowClient, board: BoardRef | None) -> str | None:
    """The id of the auto-add board ``board`` (id, name or Board), or None for no board."""
    if board is None:
        return None
    return await client.boards.resolve(board)


def _board_id(board: Any) -> str | None:
    if board is None:
        return None
    if isinstance(board, str):
        if board in ("none", ""):
            return None
        return board
    board_id = getattr(board, "board_id", None)
    if isinstance(board_id, str):
        return board_id
    raise ValidationError(
        f"board must be a board id or a board object, got {type(board).__name__}",
        input="board",
        rule="board id",
    )


def _local_images(field: IvkField[Any]) -> list[LocalImage]:
    value = field.value
    found: list[LocalImage] = []

    def walk(item: Any) -> None:
        if isinstance(item, LocalImage):
            found.append(item)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)

    if isinstance(field, (ImageField, CollectionField)):
        walk(value)
    return found


def _apply_form_settings(field: IvkField[Any], settings: Mapping[str, Any] | None) -> None:
    """Narrow a field by its form element's settings (dropdown options, slider min/max)."""
    if not settings:
        return
    if isinstance(field, StringField) and settings.get("component") == "dropdown":
        options = settings.get("options")
        if isinstance(options, list):
            values = [o.get("value") for o in options if isinstance(o, Mapping)]
            field.options = [v for v in values if isinstance(v, str)]
    if isinstance(field, (IntegerField, FloatField, NumberField)):
        low, high = settings.get("min"), settings.get("max")
        if isinstance(low, (int, float)) and not isinstance(low, bool):
            field.ge = low if field.ge is None else max(field.ge, low)
        if isinstance(high, (int, float)) and not isinstance(high, bool):
            field.le = high if field.le is None else min(field.le, high)


def _as_items(values: Any, key: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(
            f"sweep values for {key} must be a list of values, got {type(values).__name__}",
            input=key,
            rule="list of values",
        )
    return list(values)
