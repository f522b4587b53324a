"""The pure compile stage, table-driven: a workflow and values in, an enqueue body out.

No client and no server: ``compile(definition, values, schemas, ...)`` is a plain function.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import weakref
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import ValidationError
from invokeai_client.fields.schema import InvocationSchemas, bundled_openapi_text
from invokeai_client.types.batch import EnqueueBody
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples
from invokeai_client.workflows.compile import DRY_RUN_UPLOADS, compile

from .helpers import BUNDLED, png
from .test_architecture import import_graph

A = "1de9ea66-70d3-4a1f-8735-df5ef7697fb9"  # arithmetic-form: 'A', an integer node
MATH = "08f0ebd4-950c-4dd9-8e97-b5bdf073eed1"  # its integer_math node
ADD = "e8d52b3f-7c4e-48f6-b2b5-667042ecbec0"  # batch-generator: the add fed by the batch
IMAGE = "906e16f2-dcd0-4523-94c2-676f95c5cd90"  # image-input: the image node
SAVE = "a3665363-0f92-4425-acb8-f4afab11c60e"  # image-pipeline: save_image, board "auto"
BLANK = "ece37d77-2a42-4b56-9fdf-9fe20c4e7af8"  # image-pipeline: blank_image, no board value
ONE = "901715a3-54a1-452c-9543-f3e3afa16656"  # connectors-v4: the integer behind 2 connectors
CONNECTOR = "9001f909-4b35-40c8-b399-f3ddf22b18b0"  # connectors-v4: a connector node


def handle(name: str, values: dict[Any, Any]) -> WorkflowHandle:
    made = WorkflowHandle(WorkflowDefinition.from_file(examples.path(name)), schemas=BUNDLED)
    return made.update(values)


def compiled(name: str, values: dict[Any, Any], **options: Any) -> EnqueueBody:
    made = handle(name, values)
    return compile(made.definition, made.form.values, made.schemas, **options)


# (case id, workflow, values, compile options, what the body must hold: path -> value)
CASES: list[tuple[str, str, dict[Any, Any], dict[str, Any], dict[str, Any]]] = [
    ("defaults", "arithmetic-form", {}, {},
     {f"graph.nodes.{A}.value": 6, f"graph.nodes.{MATH}.operation": "MUL", "runs": 1,
      "item_count": 1, "origin": "invokeai-client", "data": []}),
    ("a value set by label", "arithmetic-form", {"A": 40}, {},
     {f"graph.nodes.{A}.value": 40}),
    ("an enum set by key", "arithmetic-form", {f"{MATH}.operation": "ADD"}, {},
     {f"graph.nodes.{MATH}.operation": "ADD"}),
    ("runs and options", "arithmetic-form", {}, {"runs": 3, "batch_id": "b", "origin": None,
                                                "destination": "there", "prepend": True},
     {"runs": 3, "item_count": 3, "batch_id": "b", "origin": None, "destination": "there",
      "prepend": True}),
    ("user data after the graph", "arithmetic-form", {},
     {"data": [[{"node_path": A, "field_name": "value", "items": [1, 2, 3]}]]},
     {"item_count": 3, "data": [[{"node_path": A, "field_name": "value", "items": [1, 2, 3]}]]}),
    ("a batch node becomes data", "batch-generator", {}, {},
     {"item_count": 3, "data.0.0.node_path": ADD, "data.0.0.field_name": "a"}),
    ("no workflow attached", "arithmetic-form", {}, {"attach_workflow": False},
     {"workflow": None}),
    ("a dry run passes local images", "image-input", {"Image": png()},
     {"uploads": DRY_RUN_UPLOADS},
     {f"graph.nodes.{IMAGE}.image": {"image_name": "not-uploaded-yet.png"}}),
    ("an upload is used by name", "image-input", {"Image": Path("cat.png")}, {"uploads": "*"},
     {f"graph.nodes.{IMAGE}.image": {"image_name": "cat-on-server.png"}}),
    ("board inputs on auto or unset save to the auto-add board", "image-pipeline", {},
     {"board": "b1"},
     {f"graph.nodes.{SAVE}.board": {"board_id": "b1"},
      f"graph.nodes.{BLANK}.board": {"board_id": "b1"}}),
    ("no auto-add board: board inputs on auto save nowhere", "image-pipeline", {}, {},
     {f"graph.nodes.{SAVE}.board": None, f"graph.nodes.{BLANK}.board": None}),
    ("a board input on none saves nowhere", "image-pipeline", {f"{SAVE}.board": "none"},
     {"board": "b1"},
     {f"graph.nodes.{SAVE}.board": None, f"graph.nodes.{BLANK}.board": {"board_id": "b1"}}),
    ("a board set on the input wins", "image-pipeline", {f"{SAVE}.board": {"board_id": "mine"}},
     {"board": "b1"}, {f"graph.nodes.{SAVE}.board": {"board_id": "mine"}}),
    ("an input fed by an edge loses its literal", "arithmetic-form", {}, {},
     {f"graph.nodes.{MATH}.a": None, f"graph.nodes.{MATH}.b": None}),
    ("connectors are followed to the invocation feeding them", "connectors-v4", {}, {},
     {f"graph.nodes.{CONNECTOR}": None, "graph.edges.0.source": {"node_id": ONE, "field": "value"},
      "graph.edges.1.source": {"node_id": ONE, "field": "value"}}),
]


def _at(body: EnqueueBody, path: str) -> Any:
    if path in ("item_count", "prepend"):
        return getattr(body, path)
    value: Any = body.to_dict()["batch"]
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value.get(part)
    return value


@pytest.mark.parametrize(("name", "values", "options", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_workflow_and_values_in_body_out(
    name: str, values: dict[Any, Any], options: dict[str, Any], expected: dict[str, Any]
) -> None:
    made = handle(name, values)
    if options.get("uploads") == "*":
        options = {**options, "uploads": {image: "cat-on-server.png"
                                          for _field, image in made.local_images()}}
    body = compile(made.definition, made.form.values, made.schemas, **options)
    for path, value in expected.items():
        assert _at(body, path) == value, path


# (case id, workflow, values, compile options, pattern, input)
BROKEN: list[tuple[str, str, dict[Any, Any], dict[str, Any], str, str]] = [
    ("runs 0", "arithmetic-form", {}, {"runs": 0}, r"runs must be an integer >= 1", "runs"),
    ("prepend as text", "arithmetic-form", {}, {"prepend": "yes"}, r"prepend must be True",
     "prepend"),
    ("empty batch id", "arithmetic-form", {}, {"batch_id": " "}, r"batch_id must be a non-empty",
     "batch_id"),
    ("an item of the wrong type", "arithmetic-form", {},
     {"data": [[{"node_path": A, "field_name": "value", "items": [1, "two"]}]]},
     r"item 1 for", "'A'"),
    ("an unknown node", "arithmetic-form", {},
     {"data": [[{"node_path": "ghost", "field_name": "value", "items": [1]}]]},
     r"not a node of the graph", "ghost"),
    ("a local image not uploaded", "image-input", {"Image": png()}, {},
     r"has not been uploaded yet", "LocalImage"),
    ("a required input without a value", "image-input", {}, {"uploads": DRY_RUN_UPLOADS},
     r"cannot run as it is", "'Image'"),
]


@pytest.mark.parametrize(("name", "values", "options", "pattern", "where"),
                         [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_what_cannot_run_fails_naming_the_input(
    name: str, values: dict[Any, Any], options: dict[str, Any], pattern: str, where: str
) -> None:
    with pytest.raises(ValidationError, match=pattern) as caught:
        compiled(name, values, **options)
    assert where in str(caught.value.input)


def test_compile_reads_its_arguments_only() -> None:
    made = handle("arithmetic-form", {"A": 1})
    before = made.to_workflow_dict()
    first = compile(made.definition, made.form.values, made.schemas, batch_id="x")
    again = compile(made.definition, made.form.values, made.schemas, batch_id="x")
    assert first.to_dict()["batch"]["graph"]["nodes"] == again.to_dict()["batch"]["graph"]["nodes"]
    assert made.to_workflow_dict() == before
    assert made.build_batch(batch_id="x")["batch"]["workflow"] == first.batch.workflow


@pytest.mark.parametrize("name", [n for n in examples.names() if n != "image-input"])
def test_the_wire_text_is_the_json_of_the_body(name: str) -> None:
    """The attached workflow is rendered from a cached template: the bytes sent are exactly
    ``json.dumps`` of the body, before and after values and node options change."""
    made = WorkflowHandle(WorkflowDefinition.from_file(examples.path(name)), schemas=BUNDLED)
    for round_ in range(3):
        body = made.compile(batch_id="b", validate=False)
        assert body.to_json() == json.dumps(body.to_dict()).encode()
        for position, inp in enumerate(made.inputs):
            if not inp.connected and isinstance(inp.value, (int, float)) and not isinstance(
                inp.value, bool
            ):
                with contextlib.suppress(ValidationError):  # a bound may refuse it
                    made.set(inp.key, inp.value + position + round_)
        node = next(made.definition.invocation_nodes())
        made.set_node(node.id, use_cache=bool(round_ % 2))


def test_a_long_lived_definition_keeps_no_clients_node_schemas() -> None:
    """A definition loaded once (module level in a web app) and compiled by many clients,
    each with its own node schemas: the compile stage's per-definition plans drop a client's
    schemas with the client (they once kept ~2.7 MB per client alive)."""
    definition = WorkflowDefinition.from_file(examples.path("arithmetic-form"))
    document = json.loads(bundled_openapi_text())
    gone = []
    for _ in range(3):
        schemas = InvocationSchemas.from_openapi(document, source="one client")
        made = WorkflowHandle(definition, schemas=schemas)
        assert made.compile().item_count == 1
        assert made.validate() == []
        gone.append(weakref.ref(schemas))
        del made, schemas
    gc.collect()
    assert [ref() for ref in gone] == [None, None, None]
    assert compiled("arithmetic-form", {"A": 2}).item_count == 1  # the cache still serves


def test_an_input_the_server_does_not_know_is_left_out_of_the_graph(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Like the GUI: a node input the server's schema lacks (a workflow from a newer
    InvokeAI or a changed node pack) is not sent, and the user is told in the log once."""
    data = json.loads(examples.path("arithmetic-form").read_text(encoding="utf-8"))
    node = next(n for n in data["nodes"] if n["id"] == A)
    node["data"]["inputs"]["newer_input"] = {"name": "newer_input", "label": "", "value": 5}
    made = WorkflowHandle(WorkflowDefinition.from_dict(data), schemas=BUNDLED)
    with caplog.at_level("WARNING", logger="invokeai_client"):
        graph = compile(made.definition, made.form.values, made.schemas).batch.graph
    assert "newer_input" not in graph["nodes"][A]
    assert graph["nodes"][A]["value"] == 6
    assert caplog.text.count("'newer_input'") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="invokeai_client"):
        made.compile()
        made.build_graph()
    assert "'newer_input'" not in caplog.text  # told once per definition and schema set


def test_the_compile_stage_imports_no_io_module() -> None:
    """The compile stage is pure: nothing it imports (type-only imports included) reaches
    the HTTP, upload or socket modules."""
    graph = import_graph()
    reached, todo = set(), ["invokeai_client.workflows.compile"]
    while todo:
        for module in graph[todo.pop()] - reached:
            reached.add(module)
            todo.append(module)
    io = {f"invokeai_client.{name}" for name in ("_http", "_uploads", "_socket", "client")}
    assert reached & io == set()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.compile(runs=1, colour="red"), "WorkflowHandle.compile() got an "
         "unexpected keyword argument 'colour'"),
        (lambda h: h.compile(uploads={}), "WorkflowHandle.compile() got an unexpected keyword "
         "argument 'uploads'"),  # the compile stage's own argument, not the handle's
        (lambda h: h.build_batch(data=None, dry_run=True), "WorkflowHandle.build_batch() got "
         "an unexpected keyword argument 'dry_run'"),  # compile()'s own
        (lambda h: compile(h.definition, h.form.values, h.schemas, bogus=1), "compile() got "
         "an unexpected keyword argument 'bogus'"),
    ],
)
def test_an_unknown_body_option_is_a_type_error_naming_it(call: Any, message: str) -> None:
    """``**options: Unpack[BodyOptions]`` takes only BodyOptions' keys, as a plain keyword
    parameter list would: a misspelt option is refused, never ignored, in the words Python
    uses for a method's unknown keyword."""
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call(handle("arithmetic-form", {}))
