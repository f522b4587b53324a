"""The enqueue body: what ``POST /api/v1/queue/{queue_id}/enqueue_batch`` takes, typed.

One home for the rules of a batch (InvokeAI's ``Batch``, ``BatchDatum`` and
``EnqueueBatchRequest``): a graph with nodes whose ids match their keys, ``runs >= 1``, data
groups that zip lists of the same length, each node field varied once, items InvokeAI can
carry (numbers, strings, image or video fields, or lists of them) of one JSON type that
matches the field's literal. The server accepts some broken batches and then stalls its whole
queue on them, so every rule is checked here, before anything is sent.

Every rule that breaks raises :class:`~invokeai_client.errors.ValidationError` naming the
part of the body (``input``) and the rule (``rule``). The workflow compile stage builds an
:class:`EnqueueBody`; ``client.runs.enqueue`` takes one (or a raw dict, parsed into one); the
in-process double checks what it receives with the same rules.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, NamedTuple, NoReturn

import pydantic
from pydantic import BaseModel, ConfigDict, SkipValidation, model_validator

from .. import errors
from .._limits import encoded_limit_problem, json_limit_problem, short_repr
from ._json import JSONText, json_copy, json_kind
from .queue import is_batch_item

__all__ = [
    "MIN_RUNS",
    "ONCE_RULE",
    "RUNS_RULE",
    "ZIP_RULE",
    "Batch",
    "BatchDatum",
    "Encoded",
    "EnqueueBody",
    "JSONText",
    "check_runs",
    "check_zipped",
    "json_kind",
    "mixed_kinds",
    "ragged",
    "repeated",
]

# -- the rules InvokeAI enforces too (the in-process double answers them with its 422s) ------

MIN_RUNS = 1
"""``Batch.runs`` is at least this."""
RUNS_RULE = f"integer >= {MIN_RUNS}"
"""The rule of ``runs`` (:func:`check_runs`)."""
ZIP_RULE = "same length in a group"
"""The rule of a data group's zipped item lists (:func:`check_zipped`)."""
ONCE_RULE = "each input once"
"""The rule that a batch varies each input (node field) once, across all its data groups."""


def check_runs(runs: Any, where: str = "runs", *, kind: str = "an int") -> int:
    """``runs`` when it is an int (not a bool) of at least :data:`MIN_RUNS`, else the
    :class:`~invokeai_client.errors.ValidationError` every way of making a batch raises:
    ``"runs must be an int >= 1, got 0"`` (``kind``: the workflow compile stage says
    ``"an integer"``, its 0.1.0 wording)."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < MIN_RUNS:
        _bad(f"{where} must be {kind} >= {MIN_RUNS}, got {short_repr(runs)}", where, RUNS_RULE)
    return runs


def check_zipped(group: int, sizes: Sequence[tuple[str, int]], where: str | None = None) -> None:
    """Refuse data group ``group`` when its zipped item lists differ in length: ``sizes`` are
    its datums' names and item counts, in order; ``where`` is the input to name (default:
    the first datum whose count differs)."""
    index = ragged([size for _, size in sizes])
    if index is not None:
        name, size = sizes[index]
        _bad(f"batch data group {group} zips lists of different lengths: {name} has {size} "
             f"items, the group's first {sizes[0][1]}; the datums of one group must have the "
             "same number of items", where or name, ZIP_RULE)


def mixed_kinds(items: Iterable[Any]) -> list[str]:
    """The JSON kinds of ``items`` when they are more than one (the rule: one kind per field;
    ints and floats are both numbers), else ``[]``."""
    kinds = {json_kind(item) for item in items}
    return sorted(kinds) if len(kinds) > 1 else []


def ragged(lengths: Sequence[int]) -> int | None:
    """The index of the first length that differs from the first (the rule: the item lists
    of one data group are zipped, so have one length), else None."""
    return next((i for i, length in enumerate(lengths) if length != lengths[0]), None)


def repeated(pairs: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The first ``(node_path, field_name)`` named again (the rule: each input varied once
    across all data groups), else None."""
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if pair in seen:
            return pair
        seen.add(pair)
    return None



_MAPS = (dict, Mapping)
"""What ``isinstance`` checks for a JSON object: an exact dict (most bodies) is answered without
the ABC's slower check."""


def _bad(message: str, where: str, rule: str) -> NoReturn:
    raise errors.ValidationError(message, input=where, rule=rule)


class _BodyModel(BaseModel):
    """A part of an enqueue body: rules broken raise our ValidationError, not pydantic's."""

    model_config = ConfigDict(frozen=True, extra="allow", arbitrary_types_allowed=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise _ours(exc) from None

    @classmethod
    def parse(cls, raw: Any) -> Any:
        """Parse ``raw`` (a dict, or already this model) with every rule checked."""
        if isinstance(raw, cls):
            return raw
        _refuse(json_limit_problem(raw), cls.__name__)  # before a message recurses into it
        return cls.build(json_copy(raw))

    @classmethod
    def build(cls, raw: Any) -> Any:
        """Make one from ``raw`` with every rule of the model checked, without the size
        walk of :meth:`parse` (for parts made from values already checked, as the compile
        stage makes them). The rules are the model's own (its ``before`` validator); the
        fields they return are taken as they are."""
        if isinstance(raw, cls):
            return raw
        return cls._made(cls._rules(raw))

    @classmethod
    def _made(cls, checked: dict[str, Any]) -> Any:
        """The model holding ``checked`` (field values its rules returned), as
        ``model_construct`` makes it, without its per-field alias and default bookkeeping:
        the part of building a body that repeats for every enqueue."""
        defaults = _defaults(cls)
        values = {**defaults, **checked}  # the fields in their order
        extra = cls._extra(checked) if len(values) > len(defaults) else {}
        for name in extra:
            del values[name]
        made = cls.__new__(cls)
        _set(made, "__dict__", values)
        _set(made, "__pydantic_fields_set__", set(checked).difference(extra))
        _set(made, "__pydantic_extra__", extra)
        _set(made, "__pydantic_private__", None)
        return made

    @classmethod
    def _extra(cls, checked: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of ``checked`` the model has no field for, with their values: kept and
        sent as they are (InvokeAI ignores keys it does not know; a newer server may not)."""
        known = _defaults(cls).keys()
        if checked.keys() <= known:
            return {}
        return {name: value for name, value in checked.items() if name not in known}

    @model_validator(mode="before")
    @classmethod
    def _before(cls, raw: Any) -> Any:
        # pydantic's way in (``Model(...)``, ``model_validate``) checks the same rules, on a
        # copy of the caller's containers like :meth:`parse`
        if isinstance(raw, _MAPS):
            _refuse(json_limit_problem(raw), cls.__name__)
            raw = json_copy(raw)
        return cls._rules(raw)

    @classmethod
    def _rules(cls, raw: Any) -> Any:
        """The model's rules: ``raw`` checked, as the model's field values."""
        return raw


_set = object.__setattr__
_DEFAULTS: dict[type[_BodyModel], dict[str, Any]] = {}


def _defaults(model: type[_BodyModel]) -> dict[str, Any]:
    """The fields of ``model`` in their order, each with its default (required: unset)."""
    found = _DEFAULTS.get(model)
    if found is None:
        found = _DEFAULTS[model] = {name: field.default
                                    for name, field in model.model_fields.items()}
    return found


class Encoded(NamedTuple):
    """An enqueue body checked and encoded for the POST (:meth:`EnqueueBody.encode`)."""

    batch: dict[str, Any]
    """The batch as JSON without its workflow (``batch_id``, ``graph``, ``runs``, ``data``,
    ``origin``, ``destination``; the body's own objects: read them, do not change them)."""
    item_count: int
    """Queue items the body makes."""
    body: bytes
    """The request body, UTF-8 JSON (what :meth:`EnqueueBody.to_json` gives)."""


def _encode_body(batch: str, prepend: bool, extra: Mapping[str, Any] | None = None) -> bytes:
    """The request's bytes around a batch's JSON text (``extra``: keys the body has beyond
    ``batch`` and ``prepend``, sent as they are)."""
    tail = "".join(f", {json.dumps(key)}: {json.dumps(value)}"
                   for key, value in extra.items()) if extra else ""
    return f'{{"batch": {batch}, "prepend": {"true" if prepend else "false"}{tail}}}'.encode()


def _check_body(raw: Any) -> bool:
    """The rules of the body around its batch; its ``prepend``."""
    if not isinstance(raw, _MAPS) or not isinstance(raw.get("batch"), (dict, Batch, Mapping)):
        _bad("an enqueue body is {'batch': {'graph': ...}, 'prepend': false}", "body",
             "has a 'batch' object")
    prepend = raw.get("prepend", False)
    if not isinstance(prepend, bool):
        _bad(f"prepend must be True or False, got {short_repr(prepend)}", "prepend", "bool")
    return prepend


def _refuse(problem: str | None, what: str) -> None:
    """Refuse a body past the size limits (``problem`` from :mod:`invokeai_client._limits`)."""
    if problem is not None:
        raise errors.ValidationError(f"refusing {what} with {problem}", input="body",
                                     rule="size limits")


def _ours(exc: pydantic.ValidationError) -> errors.ValidationError:
    """Our error for pydantic's: the rule's own error when a validator raised one."""
    first = exc.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, errors.ValidationError):
        return original
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return errors.ValidationError(f"{where}: {first['msg']}", input=where, rule=first["type"])


class BatchDatum(_BodyModel):
    """One input varied over ``items``: ``node_path`` (a node id of the graph) and
    ``field_name`` say which. Datums of one data group are zipped."""

    node_path: str
    field_name: str
    items: list[Any]

    @classmethod
    def _rules(cls, raw: Any) -> Any:
        if isinstance(raw, BatchDatum):
            return raw
        if not isinstance(raw, _MAPS):
            _bad(f"batch data holds {short_repr(raw)}, not a batch datum", "data",
                 "{node_path, field_name, items}")
        node_path, field_name = raw.get("node_path"), raw.get("field_name")
        where = f"{node_path}.{field_name}"
        if not isinstance(node_path, str) or not node_path:
            _bad(f"batch data names node {short_repr(node_path)}, which is not in the graph", where,
                 "node in the graph")
        if not isinstance(field_name, str) or not field_name:
            _bad(f"batch data for node {short_repr(node_path)} has no field_name", where,
                 "field_name")
        items = raw.get("items")
        if not isinstance(items, (list, tuple)) or not items:
            _bad(f"batch data for {where} needs a non-empty list of items", where,
                 "non-empty items")
        _check_items(items, where)
        checked = {"node_path": node_path, "field_name": field_name, "items": list(items)}
        return checked if len(raw) == len(checked) else {**raw, **checked}

    @property
    def key(self) -> str:
        """``"node_path.field_name"``."""
        return f"{self.node_path}.{self.field_name}"

    def to_dict(self) -> dict[str, Any]:
        """The datum as JSON (the items list is the model's own)."""
        out = {"node_path": self.node_path, "field_name": self.field_name, "items": self.items}
        extra = self.__pydantic_extra__
        return {**out, **extra} if extra else out


def _check_items(items: Sequence[Any], where: str) -> None:
    mixed = mixed_kinds(items)
    if mixed:
        _bad(
            f"batch data for {where} mixes value types ({', '.join(mixed)}); "
            "all items of one field must share a type",
            where, "one type per field",
        )
    kind = json_kind(items[0])
    if kind not in ("number", "string", "object", "array"):
        _bad(
            f"batch data for {where} holds {kind} values; InvokeAI batches take "
            "numbers, strings, image/video fields or lists",
            where, "number, string, image field or list",
        )
    odd = next((item for item in items if not is_batch_item(item)), None)
    if odd is not None:
        _bad(
            f"batch data for {where} holds {short_repr(odd)}, which is not an image or "
            "video field; InvokeAI batches take numbers, strings, image/video fields "
            "or lists of them",
            where, "number, string, image field or list",
        )


class Batch(_BodyModel):
    """InvokeAI's ``Batch``: a graph, the data that varies it and how often it runs."""

    batch_id: str
    graph: Annotated[dict[str, Any], SkipValidation]
    """The graph (its shape is checked by the model's own rules, not copied)."""
    runs: int = 1
    data: Annotated[list[list[BatchDatum]] | None, SkipValidation] = None
    origin: str | None = None
    destination: str | None = None
    workflow: Annotated[dict[str, Any] | JSONText | None, SkipValidation] = None
    """The workflow JSON images embed (a dict, or pre-rendered :class:`JSONText`)."""

    @pydantic.field_serializer("workflow")
    def _workflow_as_json(self, workflow: Any) -> Any:
        """A pre-rendered workflow dumps as its value (``model_dump``, ``model_dump_json``)."""
        return workflow.value() if isinstance(workflow, JSONText) else workflow

    @classmethod
    def _rules(cls, raw: Any) -> Any:
        if not isinstance(raw, _MAPS):
            _bad("an enqueue body is {'batch': {'graph': ...}, 'prepend': false}", "body",
                 "has a 'batch' object")
        batch = dict(raw)
        nodes = _check_graph(batch.get("graph"))
        if not isinstance(batch["graph"], dict):
            batch["graph"] = dict(batch["graph"])
        check_runs(batch.get("runs", 1))
        batch_id = batch.get("batch_id") or str(uuid.uuid4())
        if not isinstance(batch_id, str) or batch_id == "redacted":
            _bad(f"batch_id must be a string, got {short_repr(batch_id)}", "batch_id", "string")
        batch["batch_id"] = batch_id
        for name in ("origin", "destination"):
            text = batch.get(name)
            if text is not None and not isinstance(text, str):
                _bad(f"{name} must be a string, got {short_repr(text)}", name, "string")
        workflow = batch.get("workflow")
        if workflow is not None and not isinstance(workflow, (dict, JSONText)):
            if not isinstance(workflow, Mapping):
                _bad(f"workflow must be a workflow object or None, got "
                     f"{type(workflow).__name__}", "workflow", "object")
            batch["workflow"] = dict(workflow)  # another mapping: held as a plain dict
        if batch.get("data") is not None:
            batch["data"] = _check_data(batch["data"], nodes)
        return batch

    @property
    def items_per_run(self) -> int:
        """Queue items one run of the batch makes (the product of its groups' lengths)."""
        return _items_per_run(self.data)

    @property
    def item_count(self) -> int:
        """Queue items the whole batch makes (``runs`` x items per run)."""
        return self.runs * _items_per_run(self.data)

    def to_dict(self) -> dict[str, Any]:
        """The batch as JSON; unset optional parts are left out (the graph, the workflow and
        the items are the model's own objects, not copies: read them, do not change them)."""
        out = _wire_batch(self.__dict__, self.__pydantic_extra__)
        if "workflow" in self.__pydantic_fields_set__:
            workflow = self.workflow
            out["workflow"] = workflow.value() if isinstance(workflow, JSONText) else workflow
        return out

    def to_json(self) -> str:
        """The batch as JSON text (a pre-rendered workflow is spliced in as it is)."""
        return _encode_batch(self.__dict__, "workflow" in self.__pydantic_fields_set__,
                             _wire_batch(self.__dict__, self.__pydantic_extra__))


def _items_per_run(data: list[list[BatchDatum]] | None) -> int:
    return math.prod(len(group[0].items) for group in data) if data else 1


def _wire_batch(fields: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """A batch's checked fields as JSON without the workflow; unset optional parts are left
    out (the graph and the items are the batch's own objects); ``extra``: keys the batch
    has beyond its fields, sent as they are."""
    out: dict[str, Any] = {"batch_id": fields["batch_id"], "graph": fields["graph"],
                           "runs": fields.get("runs", 1)}
    data = fields.get("data")
    if data is not None:
        out["data"] = [[datum.to_dict() for datum in group] for group in data]
    origin, destination = fields.get("origin"), fields.get("destination")
    if origin is not None:
        out["origin"] = origin
    if destination is not None:
        out["destination"] = destination
    if extra:
        out.update(extra)
    return out


def _encode_batch(fields: Mapping[str, Any], with_workflow: bool, wire: dict[str, Any]) -> str:
    """A batch's checked fields as JSON text (``wire``: :func:`_wire_batch` of them); a
    pre-rendered workflow is spliced in as it is."""
    out = wire
    workflow = fields.get("workflow")
    if isinstance(workflow, JSONText):
        return f'{json.dumps(out)[:-1]}, "workflow": {workflow.text}}}'
    if with_workflow:
        out = {**out, "workflow": workflow}
    return json.dumps(out)


def _check_graph(graph: Any) -> Mapping[str, Any]:
    if not isinstance(graph, _MAPS) or not isinstance(graph.get("nodes"), _MAPS):
        _bad("batch.graph must be a graph object with a 'nodes' object", "graph",
             "graph with nodes")
    nodes: Mapping[str, Any] = graph["nodes"]
    if not nodes:
        _bad("batch.graph has no nodes: there is nothing to run", "graph", "at least one node")
    for key, node in nodes.items():
        if type(node) is not dict and not isinstance(node, Mapping):
            _bad(f"graph node {short_repr(key)} must be an object, got {type(node).__name__}",
                 str(key), "node object")
        node_id = node.get("id", key)
        if node_id != key:
            _bad(f"graph node {short_repr(key)} has the id {short_repr(node_id)}; a node's id "
                 "must be its key",
                 str(key), "node id matches its key")
    return nodes


def _check_data(data: Any, nodes: Mapping[str, Any]) -> list[list[BatchDatum]]:
    if not isinstance(data, (list, tuple)):
        _bad("batch.data must be a list of groups (lists of batch data)", "data",
             "list of lists")
    groups: list[list[BatchDatum]] = []
    for g, group in enumerate(data):
        if not isinstance(group, (list, tuple)) or not group:
            _bad(f"batch.data[{g}] must be a non-empty list of batch data", "data",
                 "non-empty groups")
        checked = [BatchDatum.build(datum) for datum in group]
        twice = repeated((d.node_path, d.field_name) for grp in (*groups, checked) for d in grp)
        if twice is not None:
            _bad(f"batch data sets {'.'.join(twice)} twice", ".".join(twice), ONCE_RULE)
        for datum in checked:
            _check_datum_in_graph(datum, nodes)
        check_zipped(g, [(d.key, len(d.items)) for d in checked])
        groups.append(checked)
    return groups


def _check_datum_in_graph(datum: BatchDatum, nodes: Mapping[str, Any]) -> None:
    where = datum.key
    if datum.node_path not in nodes:
        _bad(f"batch data names node {short_repr(datum.node_path)}, which is not in the graph",
             where,
             "node in the graph")
    literal = nodes[datum.node_path].get(datum.field_name)
    kind = json_kind(datum.items[0])
    if literal is not None and json_kind(literal) != kind:
        _bad(
            f"batch data for {where} holds {kind} values but the field holds a "
            f"{json_kind(literal)} ({short_repr(literal)}); a wrongly typed batch value stalls "
            "the server's whole queue",
            where, f"{json_kind(literal)} values",
        )


class EnqueueBody(_BodyModel):
    """The body of ``enqueue_batch``: a :class:`Batch` and whether it jumps the queue.

    Build one with ``EnqueueBody.parse(raw_dict)``, ``EnqueueBody(batch=..., prepend=...)``
    or the workflow compile stage (``invokeai_client.workflows.compile``); every rule is
    checked when it is made, so a body that exists is one InvokeAI can run. It is immutable
    and can be sent to many servers (each enqueue registers its own ``batch_id``: use
    :meth:`with_batch_id` for a second send to the same server).
    """

    ENDPOINT: ClassVar[str] = "enqueue_batch"

    batch: Batch
    prepend: bool = False

    @classmethod
    def _rules(cls, raw: Any) -> Any:
        prepend = _check_body(raw)
        return {**raw, "batch": Batch.build(raw["batch"]), "prepend": prepend}

    @classmethod
    def encode(cls, raw: Any, *, origin: str | None = None) -> Encoded:
        """A body (this model or its dict form) checked by every rule and encoded for the
        POST; ``origin`` is the batch's when it names none.

        The same answers and errors, in the same order, as :meth:`parse` and then
        :meth:`to_json`, for less: a dict is checked without building the models (the rules
        are theirs), and the size limits are read from the encoded bytes instead of a walk
        of ``raw`` before the rules (where the bytes leave a doubt, the walk decides)."""
        if isinstance(raw, cls) or (
            isinstance(raw, _MAPS) and isinstance(raw.get("batch"), Batch)
        ):
            body: EnqueueBody = cls.parse(raw)
            if origin is not None and body.batch.origin is None:
                body = body.with_origin(origin)
            batch = body.batch
            wire = _wire_batch(batch.__dict__, batch.__pydantic_extra__)
            text = _encode_batch(batch.__dict__, "workflow" in batch.__pydantic_fields_set__, wire)
            return Encoded(wire, body.item_count,
                           _encode_body(text, body.prepend, body.__pydantic_extra__))
        try:
            prepend = _check_body(raw)
            fields = Batch._rules(raw["batch"])
            if origin is not None and fields.get("origin") is None:
                fields["origin"] = origin
            wire = _wire_batch(fields, Batch._extra(fields))
            text = _encode_batch(fields, "workflow" in fields, wire)
            encoded = _encode_body(text, prepend, cls._extra(raw))
        except Exception:
            _refuse(json_limit_problem(raw), cls.__name__)  # the error parse() gives first
            raise
        _refuse(encoded_limit_problem(encoded, raw), cls.__name__)
        return Encoded(wire, fields.get("runs", 1) * _items_per_run(fields.get("data")), encoded)

    @property
    def batch_id(self) -> str:
        """The client-chosen id of the batch (the router registers it before the POST)."""
        return self.batch.batch_id

    @property
    def item_count(self) -> int:
        """Queue items this body makes."""
        return self.batch.item_count

    def with_batch_id(self, batch_id: str | None = None) -> EnqueueBody:
        """The same body under another batch id (a new uuid4 by default)."""
        if batch_id is not None and (not isinstance(batch_id, str) or batch_id == "redacted"):
            _bad(f"batch_id must be a string, got {short_repr(batch_id)}", "batch_id", "string")
        batch = self.batch.model_copy(update={"batch_id": batch_id or str(uuid.uuid4())})
        return self.model_copy(update={"batch": batch})

    def with_origin(self, origin: str) -> EnqueueBody:
        """The same body with ``origin`` set (the client's default origin on enqueue)."""
        batch = self.batch.model_copy(update={"origin": origin})
        return self.model_copy(update={"batch": batch})

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-ready dicts (sharing the model's graph, workflow and items)."""
        return {"batch": self.batch.to_dict(), "prepend": self.prepend,
                **(self.__pydantic_extra__ or {})}

    def to_json(self) -> bytes:
        """The request as UTF-8 JSON, what goes over the wire (the same text as
        ``json.dumps(body.to_dict())``)."""
        return _encode_body(self.batch.to_json(), self.prepend, self.__pydantic_extra__)
