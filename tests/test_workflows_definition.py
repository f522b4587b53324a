"""Loading workflows: versions, structure errors, GUI input order, keys and immutability."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import ValidationError, WorkflowError
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

from .conftest import SEED_WORKFLOWS
from .helpers import BUNDLED, example, gui_node, gui_workflow, handle

SEED_FILES = sorted(SEED_WORKFLOWS.glob("*.json")) if SEED_WORKFLOWS.is_dir() else []
needs_seed = pytest.mark.skipif(not SEED_FILES, reason="../shared/fixtures is not available")


def form_order(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """The GUI's order of form fields: depth-first from the root, children in order."""
    form = workflow.get("form") or {}
    elements = form.get("elements") or {}
    order: list[tuple[str, str]] = []

    def walk(element_id: str) -> None:
        element = elements[element_id]
        if element["type"] == "node-field":
            ident = element["data"]["fieldIdentifier"]
            order.append((ident["nodeId"], ident["fieldName"]))
        for child in (element.get("data") or {}).get("children", []):
            walk(child)

    if elements:
        walk(form.get("rootElementId", "root"))
    if not order:
        order = [(f["nodeId"], f["fieldName"]) for f in workflow.get("exposedFields", [])]
    return order


# -- seed workflows ------------------------------------------------------------------------


@needs_seed
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("typed", [True, False], ids=["schema", "inferred"])
def test_every_seed_workflow_loads_with_inputs_in_gui_order(path: Path, typed: bool) -> None:
    data = json.loads(path.read_text())
    h = handle(data, typed)
    assert [(i.node_id, i.field_name) for i in h.inputs] == form_order(data)
    assert [i.index for i in h.inputs] == list(range(len(h.inputs)))
    for i in h.inputs:
        assert i.label
        assert h.input(i.index) is i
        assert h.input(i.key) is i


@needs_seed
def test_sdxl_seed_inputs_have_the_types_the_server_declares() -> None:
    h = handle(json.loads((SEED_WORKFLOWS / "sdxl-text-to-image.json").read_text()))
    types = [i.type_name for i in h.inputs]
    assert types == [
        "ModelIdentifierField",
        "StringField",
        "StringField",
        "IntegerField",
        "IntegerField",
        "IntegerField",
        "FloatField",
        "EnumField",
        "BoardField",
    ]
    model = h.input(0).field
    assert model.model_types == ["main"]
    assert model.model_bases == ["sdxl"]
    assert "dpmpp_3m_k" in h.input(7).field.options


# -- own examples --------------------------------------------------------------------------


@pytest.mark.parametrize("name", examples.names())
def test_every_example_loads_in_form_order(name: str) -> None:
    data = example(name)
    h = handle(data)
    assert [(i.node_id, i.field_name) for i in h.inputs] == form_order(data)
    assert h.validate() == [] or name == "image-input"


def test_nested_form_order_with_headings_text_and_dividers() -> None:
    h = handle(example("arithmetic-form"))
    assert [i.label for i in h.inputs] == ["A", "B", "Operation", "Factor", "Multiplier"]
    assert h.definition.exposed_source == "form"


def test_legacy_workflow_falls_back_to_exposed_fields() -> None:
    data = example("legacy-exposed-fields")
    assert "form" not in data
    h = handle(data)
    assert h.definition.exposed_source == "exposedFields"
    assert [i.label for i in h.inputs] == ["Left", "Right"]


def test_empty_form_falls_back_to_exposed_fields() -> None:
    data = example("legacy-exposed-fields")
    data["form"] = {
        "elements": {
            "root": {
                "id": "root",
                "type": "container",
                "data": {"layout": "column", "children": []},
            }
        },
        "rootElementId": "root",
    }
    assert [i.label for i in handle(data).inputs] == ["Left", "Right"]


def test_v4_workflow_with_connectors_loads() -> None:
    h = handle(example("connectors-v4"))
    assert h.definition.schema_version == "4.0.0"
    assert {n.kind for n in h.definition.nodes.values()} == {"invocation", "connector"}


# -- versions and structure errors ----------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0", "5.0.0", "0.1.0"])
def test_unsupported_schema_versions_name_the_version(version: str) -> None:
    data = example("notes-collapsed")
    data["meta"]["version"] = version
    with pytest.raises(WorkflowError, match=version.replace(".", r"\.")):
        WorkflowDefinition.from_dict(data)


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0", "4.0.0", "4.2.1"])
def test_schema_versions_3_and_4_load(version: str) -> None:
    data = example("notes-collapsed")
    data["meta"]["version"] = version
    assert WorkflowDefinition.from_dict(data).schema_version == version


def test_missing_meta_is_a_clear_error() -> None:
    data = example("notes-collapsed")
    del data["meta"]
    with pytest.raises(WorkflowError, match="meta"):
        WorkflowDefinition.from_dict(data)


def test_malformed_json_says_where() -> None:
    text = examples.path("notes-collapsed").read_text()
    broken = text.replace('"nodes": [', '"nodes": [,', 1)
    with pytest.raises(WorkflowError, match=r"line \d+ column \d+"):
        WorkflowDefinition.from_json(broken)


def test_missing_nodes_is_an_error() -> None:
    data = example("notes-collapsed")
    del data["nodes"]
    with pytest.raises(WorkflowError, match="nodes"):
        WorkflowDefinition.from_dict(data)


def test_edge_to_unknown_node_names_the_edge_and_node() -> None:
    data = example("notes-collapsed")
    data["edges"][0]["target"] = "ghost"
    with pytest.raises(WorkflowError, match=r"edge #0.*'ghost'"):
        WorkflowDefinition.from_dict(data)


def test_edge_into_a_missing_field_names_it() -> None:
    data = example("notes-collapsed")
    data["edges"][0]["targetHandle"] = "nope"
    with pytest.raises(WorkflowError, match="'nope'"):
        WorkflowDefinition.from_dict(data)


def test_form_child_that_does_not_exist_names_it() -> None:
    data = example("arithmetic-form")
    data["form"]["elements"]["root"]["data"]["children"].append("missing-element")
    with pytest.raises(WorkflowError, match="'missing-element'"):
        WorkflowDefinition.from_dict(data)


def test_form_field_pointing_to_unknown_node_says_where() -> None:
    data = example("arithmetic-form")
    element_id, element = next(
        (k, v) for k, v in data["form"]["elements"].items() if v["type"] == "node-field"
    )
    element["data"]["fieldIdentifier"]["nodeId"] = "nowhere"
    with pytest.raises(WorkflowError, match=f"form element '{element_id}'.*'nowhere'"):
        WorkflowDefinition.from_dict(data)


def test_form_field_pointing_to_unknown_field_says_where() -> None:
    data = example("arithmetic-form")
    element = next(v for v in data["form"]["elements"].values() if v["type"] == "node-field")
    element["data"]["fieldIdentifier"]["fieldName"] = "bogus"
    with pytest.raises(WorkflowError, match="'bogus'"):
        WorkflowDefinition.from_dict(data)


def test_duplicate_node_ids_are_an_error() -> None:
    data = example("notes-collapsed")
    data["nodes"].append(copy.deepcopy(data["nodes"][1]))
    with pytest.raises(WorkflowError, match="two nodes"):
        WorkflowDefinition.from_dict(data)


def test_exposed_field_pointing_nowhere_is_an_error() -> None:
    data = example("legacy-exposed-fields")
    data["exposedFields"][0]["nodeId"] = "ghost"
    with pytest.raises(WorkflowError, match=r"exposedFields\[0\].*'ghost'"):
        WorkflowDefinition.from_dict(data)


def test_not_an_object_is_an_error() -> None:
    with pytest.raises(WorkflowError, match="JSON object"):
        WorkflowDefinition.from_json("[1, 2]")


def test_unreadable_file_is_a_workflow_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="cannot read"):
        WorkflowDefinition.from_file(tmp_path / "nope.json")


# -- keys ----------------------------------------------------------------------------------


def test_keys_by_index_label_and_node_field() -> None:
    h = handle(example("arithmetic-form"))
    factor = h.input("Factor")
    assert h.input(3) is factor
    assert h.input(factor.key) is factor
    assert h.input("factor") is factor  # labels also match case-insensitively
    h.set("Factor", 0.5).set(0, 3)
    assert h.get(factor.key) == 0.5
    assert h.get("A") == 3


def test_ambiguous_label_lists_the_candidates() -> None:
    data = example("notes-collapsed")
    for node in data["nodes"]:
        if node["type"] == "invocation":
            node["data"]["inputs"]["b"]["label"] = "Same"
    h = handle(data)
    with pytest.raises(ValidationError) as caught:
        h.set("Same", 1)
    message = str(caught.value)
    assert "ambiguous" in message
    assert all(i.key in message for i in h.inputs if i.label == "Same")
    assert caught.value.rule == "unambiguous input key"


def test_unknown_key_lists_the_inputs() -> None:
    h = handle(example("arithmetic-form"))
    with pytest.raises(ValidationError) as caught:
        h.get("Factr")
    message = str(caught.value)
    assert "Did you mean 'Factor'" in message
    for i in h.inputs:
        assert i.key in message
    with pytest.raises(ValidationError, match="out of range"):
        h.get(99)
    with pytest.raises(ValidationError, match="input key"):
        h.get(1.5)  # type: ignore[arg-type]


def test_any_node_input_is_reachable_by_node_and_field() -> None:
    data = example("arithmetic-form")
    h = handle(data)
    math = next(n for n in data["nodes"] if n["data"]["type"] == "integer_math")
    # integer_math.a is fed by an edge, so a literal would be ignored: refused.
    with pytest.raises(ValidationError, match="fed by"):
        h.set(f"{math['id']}.a", 5)
    with pytest.raises(ValidationError, match="fed by") as caught:
        h.update({"Operation": "ADD", f"{math['id']}.a": 5})
    assert caught.value.rule == "not connected"
    assert h.get("Operation") != "ADD"  # nothing was changed
    float_math = next(n for n in data["nodes"] if n["data"]["type"] == "float_math")
    h.set(f"{float_math['id']}.operation", "ADD")
    assert h.build_graph()["nodes"][float_math["id"]]["operation"] == "ADD"


# -- immutability --------------------------------------------------------------------------


def test_handles_never_change_the_definition_or_each_other() -> None:
    data = example("image-pipeline")
    definition = WorkflowDefinition.from_dict(data)
    before = definition.to_dict()
    first = WorkflowHandle(definition, schemas=BUNDLED)
    second = WorkflowHandle(definition, schemas=BUNDLED)
    first.set("Canvas width", 100).set("Color", "#00ff00")
    third = first.copy()
    third.set("Canvas width", 200)
    assert second.get("Canvas width") == 64
    assert first.get("Canvas width") == 100
    assert third.get("Canvas width") == 200
    assert third.get("Color") == {"r": 0, "g": 255, "b": 0, "a": 255}
    first.get("Color")["r"] = 1  # mutating a value in place touches only that handle
    assert third.get("Color")["r"] == 0
    graph = first.build_graph()
    graph["nodes"].clear()
    assert definition.to_dict() == before == data
    data["name"] = "changed after load"
    assert definition.name == "Image pipeline"


def test_definition_refuses_attribute_changes() -> None:
    definition = WorkflowDefinition.from_dict(example("notes-collapsed"))
    with pytest.raises(AttributeError):
        definition.name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        definition._data = {}  # type: ignore[misc]
    copied = definition.to_dict()
    copied["nodes"].clear()
    assert definition.nodes


def test_update_checks_everything_before_changing_anything() -> None:
    h = handle(example("arithmetic-form"))
    with pytest.raises(ValidationError):
        h.update({"A": 10, "B": "not a number"})
    assert h.get("A") == 6
    h.update({"A": 10}, B=11)
    assert (h.get("A"), h.get("B")) == (10, 11)


def test_null_edges_load_as_no_edges_and_round_trip() -> None:
    data = example("arithmetic-form")
    data["edges"] = None
    h = WorkflowHandle(WorkflowDefinition.from_dict(data), schemas=BUNDLED)
    assert h.to_workflow_dict()["edges"] == []
    assert h.build_graph(validate=False)["edges"] == []


@pytest.mark.parametrize("typed", [True, False])
def test_a_file_value_of_the_wrong_shape_is_a_problem_not_a_crash(typed: bool) -> None:
    node = gui_node("integer_collection", {"collection": [1, 2]})
    node["data"]["inputs"]["collection"]["value"] = 5  # a hand-edited file
    exposed = [{"nodeId": node["id"], "fieldName": "collection"}]
    data = gui_workflow("bad collection", [node], exposed=exposed)
    h = WorkflowHandle(WorkflowDefinition.from_dict(data), schemas=BUNDLED if typed else None)
    assert h.build_graph(validate=False)["nodes"][node["id"]]["collection"] == 5
    if typed:
        assert any("collection" in problem for problem in h.validate())
        with pytest.raises(ValidationError, match="collection"):
            h.build_graph()
