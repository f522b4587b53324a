"""The compile stage: a workflow and its values in, a checked enqueue body out. Pure.

:func:`compile` does what the InvokeAI GUI's "Invoke" does, with no client, no I/O and no
mode flags; everything it needs comes in as arguments, so one body can be compiled once and
sent to many servers (the pool does), and a dry run is a compile with placeholder uploads
(:data:`DRY_RUN_UPLOADS`).

1. Nodes: invocation nodes only, minus batch and generator nodes (notes, connector and
   current_image nodes are UI-only). Each becomes ``{id, type, <inputs with a value>,
   use_cache, is_intermediate}``. Board inputs: ``"auto"`` (or empty) becomes the auto-add
   board given to the compile, or nothing; ``"none"`` becomes nothing.
2. Edges: ``default`` edges between kept nodes (``collapsed`` edges are drawings); a connector
   source is followed back to the invocation output feeding it; duplicates are dropped.
3. Every input fed by an edge loses its literal value.
4. Batch and generator nodes become ``Batch.data``: per batch group, zipped (``Group N``) or
   each on its own (``None``, a cartesian product); the caller's data groups follow.
5. The workflow itself is attached (without its library id), so saved images embed it.

Each value is converted to its API form once, here; the body is checked once, by
:class:`~invokeai_client.types.batch.EnqueueBody`.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict, Unpack

from .._checks import check_bool, check_keywords
from .._constants import DEFAULT_ORIGIN
from .._limits import short_repr
from ..errors import ValidationError, WorkflowError
from ..fields._base import UNSET, ImageResolver
from ..fields.models import ModelIdentifierField
from ..fields.resources import BoardField, ImageField, LocalImage
from ..fields.schema import InvocationSchemas
from ..types.batch import EnqueueBody, check_runs
from . import _sweeps
from ._gui_json import workflow_for_batch
from ._topology import per_definition, topology_of
from .definition import WorkflowDefinition, WorkflowNode
from .form import IMAGE_HOLDERS, WorkflowValues, held_local_images

log = logging.getLogger("invokeai_client")

Uploads = Mapping[LocalImage, str]
"""Local image -> the name it was uploaded under."""


class _Placeholders(Mapping[LocalImage, str]):
    """Uploads for a dry run: every local image counts as uploaded, under a placeholder."""

    def __getitem__(self, image: LocalImage) -> str:
        return "not-uploaded-yet.png"

    def __contains__(self, image: object) -> bool:
        return True

    def __iter__(self) -> Iterator[LocalImage]:
        return iter(())

    def __len__(self) -> int:
        return 0


DRY_RUN_UPLOADS: Uploads = _Placeholders()
"""Pass as ``uploads`` to compile before uploading: local images pass as if uploaded, so
everything knowable locally fails before any request."""


def image_resolver(uploads: Uploads, *, strict: bool) -> ImageResolver:
    """Local image -> ``{"image_name": ...}`` from ``uploads``; one that is not uploaded
    raises (``strict``) or is left out."""

    def resolve(image: Any) -> Any:
        name = uploads.get(image)
        if name is not None:
            return {"image_name": name}
        if not strict:
            return UNSET
        raise ValidationError(
            f"{image!r} has not been uploaded yet; call 'await handle.upload_images()' "
            "(submit does it for you)",
            input=repr(image),
            rule="uploaded",
        )

    return resolve


def convert(values: WorkflowValues, uploads: Uploads) -> dict[tuple[str, str], Any]:
    """Every field's value in API form, converted once per compile: the graph and the
    attached workflow both read it (a local image not in ``uploads`` is left out: the graph
    reports it, the workflow omits it, as the GUI does before an upload)."""
    lenient = image_resolver(uploads, strict=False)
    return {key: held.to_api(lenient) for key, held in values.fields.items()}


class BodyOptions(TypedDict, total=False):
    """The enqueue body's keyword options (``**options``) of :func:`compile`,
    :meth:`WorkflowHandle.compile() <invokeai_client.workflows.handle.WorkflowHandle.compile>`
    and ``build_batch()``; each optional, defaults in :data:`BODY_DEFAULTS`."""

    runs: int
    """How many times the server repeats everything (at least 1; default 1)."""
    batch_id: str | None
    """The batch's id (None: a new UUID), so the caller can watch it before it is enqueued."""
    origin: str | None
    """Who enqueued the batch, as the queue shows it (default ``"invokeai-client"``)."""
    destination: str | None
    """Where the outputs go, as the queue shows it (default None)."""
    prepend: bool
    """Put the items at the front of the queue (default False)."""
    validate: bool
    """Fail with a :class:`ValidationError` listing every problem of a workflow that cannot
    run (default True)."""
    attach_workflow: bool
    """Attach the workflow (as the GUI saves it) to the batch (default True)."""


BODY_DEFAULTS: BodyOptions = {
    "runs": 1, "batch_id": None, "origin": DEFAULT_ORIGIN, "destination": None,
    "prepend": False, "validate": True, "attach_workflow": True,
}
"""The value of each :class:`BodyOptions` key a call leaves out."""


def compile(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: InvocationSchemas | None = None,
    *,
    board: str | None = None,
    uploads: Uploads | None = None,
    data: Sequence[Sequence[Mapping[str, Any]]] = (),
    **options: Unpack[BodyOptions],
) -> EnqueueBody:
    """The enqueue body of ``definition`` with ``values`` (typed by ``schemas``).

    ``board`` is the auto-add board id; ``uploads`` maps local images to their uploaded
    names (:data:`DRY_RUN_UPLOADS` for a dry run); ``data`` adds ``Batch.data`` groups of
    ``{"node_path", "field_name", "items"}`` after the workflow's batch nodes, each item
    checked by its input's field. ``options``: :class:`BodyOptions`; with ``validate`` a
    workflow that cannot run fails with a :class:`ValidationError` listing every problem.
    """
    check_keywords("compile", options, BodyOptions.__annotations__)
    given: BodyOptions = {**BODY_DEFAULTS, **options}
    runs, batch_id, prepend = given["runs"], given["batch_id"], given["prepend"]
    check_runs(runs, kind="an integer")
    check_bool("prepend", prepend)
    origin, destination = given["origin"], given["destination"]
    for name, text in (("origin", origin), ("destination", destination)):
        if text is not None and not isinstance(text, str):
            raise ValidationError(f"{name} must be a string, got {short_repr(text)}",
                                  input=name, rule="string")
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id.strip()):
        raise ValidationError(
            f"batch_id must be a non-empty string, got {short_repr(batch_id)}", input="batch_id",
            rule="non-empty",
        )
    uploads = uploads if uploads is not None else {}
    images = image_resolver(uploads, strict=True)
    converted = convert(values, uploads)
    targets = {(d["node_path"], d["field_name"]) for group in data for d in group}
    graph = compile_graph(definition, values, schemas, board=board, uploads=uploads,
                          validate=given["validate"], batch_targets=targets, converted=converted)
    fed = {(e["destination"]["node_id"], e["destination"]["field"]) for e in graph["edges"]}
    groups = _sweeps.batch_node_data(definition, values, schemas, images) + [
        [_sweeps.typed_datum(definition, values, schemas, d, where="data", images=images,
                            fed=fed) for d in group]
        for group in data
    ]
    batch: dict[str, Any] = {"batch_id": batch_id or str(uuid.uuid4()), "graph": graph,
                             "runs": runs, "data": groups, "origin": origin,
                             "destination": destination}
    if given["attach_workflow"]:
        batch["workflow"] = workflow_for_batch(definition, values, converted)
    body: EnqueueBody = EnqueueBody.build({"batch": batch, "prepend": prepend})
    return body  # checked once, here


def compile_graph(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: InvocationSchemas | None = None,
    *,
    board: str | None = None,
    uploads: Uploads | None = None,
    validate: bool = True,
    batch_targets: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    converted: Mapping[tuple[str, str], Any] | None = None,
) -> dict[str, Any]:
    """The API graph of ``definition`` with ``values`` (see the module docstring);
    ``converted`` is :func:`convert`'s result when the caller has it already."""
    uploads = uploads if uploads is not None else {}
    if converted is None:
        converted = convert(values, uploads)
    current = _Values(values, converted, uploads)
    plan = _plan(definition, schemas)
    nodes = {p.node.id: _graph_node(values, p, board, current) for p in plan}
    edges: list[dict[str, dict[str, str]]] = []
    for source, source_field, target, target_field in topology_of(definition).data_edges:
        edges.append(
            {
                "source": {"node_id": source, "field": source_field},
                "destination": {"node_id": target, "field": target_field},
            }
        )
        nodes[target].pop(target_field, None)
    if validate:
        refuse(definition, problems(definition, values, schemas, nodes, edges, batch_targets,
                                    uploads))
    return {"id": str(uuid.uuid4()), "nodes": nodes, "edges": edges}


def refuse(definition: WorkflowDefinition, found: Sequence[str]) -> None:
    """Raise the :class:`ValidationError` listing ``found`` (:func:`problems`) if any."""
    if found:
        raise ValidationError(
            f"workflow {definition.name!r} cannot run as it is:\n  - " + "\n  - ".join(found),
            input=found[0].split(":", 1)[0],
            rule="runnable workflow",
        )


class _Values:
    """Input values for the graph: converted ones (copied unless scalar), else literals."""

    __slots__ = ("converted", "fields", "pending", "uploads")

    def __init__(
        self, values: WorkflowValues, converted: Mapping[tuple[str, str], Any], uploads: Uploads
    ) -> None:
        self.fields = values.fields
        self.converted = converted
        self.uploads = uploads
        self.pending = {
            key for key, held in values.fields.items()
            if isinstance(held, IMAGE_HOLDERS)
            and any(image not in uploads for image in held_local_images(held))
        }

    def get(self, node: WorkflowNode, name: str) -> Any:
        key = (node.id, name)
        if key in self.pending:  # raises, naming the image that is not uploaded
            value = self.fields[key].to_api(image_resolver(self.uploads, strict=True))
        elif key in self.converted:
            value = self.converted[key]
        else:
            spec = node.inputs.get(name)
            value = spec.value if spec is not None else UNSET
        return value if isinstance(value, _SCALARS) else copy.deepcopy(value)


_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class _NodePlan:
    """What a node contributes to every graph of one definition and schema set."""

    node: WorkflowNode
    inputs: tuple[tuple[str, bool], ...]
    """The inputs the server knows, each with whether the schema calls it a board."""
    use_cache: bool
    required: tuple[str, ...]
    """Inputs the server requires a value or a connection for."""


def _plan(definition: WorkflowDefinition, schemas: InvocationSchemas | None
          ) -> tuple[_NodePlan, ...]:
    """The executable nodes' plans (made once per definition and schema set; an input the
    server does not know is left out of them and logged then, not on every compile)."""
    return per_definition(definition, "graph plan", lambda: tuple(_node_plan(definition, schemas)),
                          owner=schemas)


def _node_plan(definition: WorkflowDefinition, schemas: InvocationSchemas | None
               ) -> Iterator[_NodePlan]:
    for node in definition.nodes.values():
        if not node.is_executable:
            continue
        node_schema = schemas.get(node.type) if schemas is not None else None
        if schemas is not None and node_schema is None:
            raise WorkflowError(
                f"node {node.id!r} is a {node.type!r} node, which this server does not have "
                f"({schemas.source}); install its node pack or remove the node"
            )
        if node_schema is None:
            yield _NodePlan(node, tuple((n, n == "board") for n in node.inputs), True, ())
            continue
        known = node_schema.accepts_extra_inputs
        inputs = tuple(
            (name, "/BoardField" in repr(node_schema.inputs.get(name)))
            for name in node.inputs if known or name in node_schema.inputs
        )
        for name in node.inputs:
            if not known and name not in node_schema.inputs:  # told once per plan
                log.warning(
                    "workflow %r: node %s (%s) has an input %r that the server does not know; "
                    "it is left out of the graph (like the GUI does)",
                    definition.name, node.id, node.type, name,
                )
        required = tuple(n for n, prop in node_schema.inputs.items() if prop.get("orig_required"))
        yield _NodePlan(node, inputs, node_schema.use_cache, required)


def _graph_node(
    values: WorkflowValues,
    plan: _NodePlan,
    board: str | None,
    current: _Values,
) -> dict[str, Any]:
    node = plan.node
    graph_node: dict[str, Any] = {"type": node.type, "id": node.id}
    fields = values.fields
    for name, board_by_schema in plan.inputs:
        value = current.get(node, name)
        held = fields.get((node.id, name))
        if isinstance(held, BoardField) if held is not None else board_by_schema:
            if value is UNSET or value is None or value in ("", "auto"):
                value = {"board_id": board} if board else UNSET
            elif value == "none":
                value = UNSET
        if value is not UNSET:
            graph_node[name] = value
    options = values.node_options.get(node.id, {})
    use_cache = options.get("use_cache", node.use_cache)
    graph_node["use_cache"] = plan.use_cache if use_cache is None else use_cache
    graph_node["is_intermediate"] = options.get("is_intermediate", node.is_intermediate)
    return graph_node


def problems(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: InvocationSchemas | None,
    nodes: Mapping[str, Mapping[str, Any]],
    edges: Sequence[Mapping[str, Any]],
    batch_targets: set[tuple[str, str]] | frozenset[tuple[str, str]],
    uploads: Uploads,
) -> list[str]:
    """Everything that would stop the graph ``nodes`` + ``edges`` from running: bad values,
    local images not in ``uploads``, required inputs with neither a value nor a feed."""
    found: list[str] = []
    connected = {(e["destination"]["node_id"], e["destination"]["field"]) for e in edges}
    skip = connected | batch_targets | topology_of(definition).batch_fed
    suspect = values.suspect
    for key, held in values.fields.items():
        if key in skip:
            continue
        if key in suspect:
            found.extend(held.problems())
        pending = held.pending_name if isinstance(held, ModelIdentifierField) else None
        if pending is not None:
            found.append(
                f"input {held.display_name()}: model {pending.text!r} is looked up on the server "
                "at submit time (call 'await handle.sync_models()' first)"
            )
        if isinstance(held, ImageField) and any(
            image not in uploads for image in held.local_images()
        ):
            found.append(
                f"input {held.display_name()}: holds local image data that is uploaded "
                "at submit time (call 'await handle.upload_images()' first)"
            )
    if schemas is None:
        return found
    for plan in _plan(definition, schemas):
        graph_node = nodes.get(plan.node.id)
        if graph_node is None:
            continue
        for name in plan.required:
            key = (plan.node.id, name)
            if key in skip or graph_node.get(name) is not None:
                continue
            known = values.fields.get(key)
            where = known.display_name() if known is not None else repr(f"{key[0]}.{name}")
            found.append(
                f"input {where}: {plan.node.type} needs a value or a connection for {name!r}"
            )
    return found


def check(
    definition: WorkflowDefinition,
    values: WorkflowValues,
    schemas: InvocationSchemas | None = None,
    *,
    uploads: Uploads | None = None,
) -> list[str]:
    """Everything that would stop this workflow from running (empty when it can run)."""
    uploads = uploads if uploads is not None else {}
    try:
        graph = compile_graph(definition, values, schemas, uploads=uploads, validate=False)
    except (WorkflowError, ValidationError) as exc:
        return [str(exc)]
    targets = {key for key in topology_of(definition).fed if key[0] in graph["nodes"]}
    return problems(definition, values, schemas, graph["nodes"], graph["edges"], targets,
                    uploads)


__all__ = [
    "BODY_DEFAULTS",
    "DRY_RUN_UPLOADS",
    "BodyOptions",
    "Uploads",
    "check",
    "compile",
    "compile_graph",
    "convert",
    "image_resolver",
    "problems",
    "refuse",
]
