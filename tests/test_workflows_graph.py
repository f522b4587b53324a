"""Workflow -> graph and enqueue body, compared with what the InvokeAI GUI built and enqueued."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from invokeai_client import ValidationError, WorkflowError
from invokeai_client.workflows.generators import MersenneTwister, generator_values

from .conftest import SEED_WORKFLOWS
from .helpers import BUNDLED, example, handle

CAPTURES = (
    sorted((SEED_WORKFLOWS / "api-calls").glob("call-wf-*.json")) if SEED_WORKFLOWS.is_dir() else []
)
needs_captures = pytest.mark.skipif(not CAPTURES, reason="../shared/fixtures is not available")

# The captured runs come from slightly different revisions of the workflow files; their
# README names prompts, denoising_start and board ids. Those fields are not compared when the
# graph is built from the file (they are when built from the workflow embedded in the capture).
REVISION_FIELDS = {"prompt", "denoising_start", "board", "value"}


def edge_set(graph: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (
            e["source"]["node_id"],
            e["source"]["field"],
            e["destination"]["node_id"],
            e["destination"]["field"],
        )
        for e in graph["edges"]
    }


def node_of(data: dict[str, Any], node_type: str) -> dict[str, Any]:
    return next(
        n for n in data["nodes"] if n["type"] == "invocation" and n["data"]["type"] == node_type
    )


# -- the seed's captured GUI runs ----------------------------------------------------------


def _auto_board(workflow: dict[str, Any], captured: dict[str, Any]) -> str | None:
    """The GUI's auto-add board at capture time: what its "auto" board inputs became."""
    for node in workflow["nodes"]:
        board = node.get("data", {}).get("inputs", {}).get("board", {}).get("value")
        if board == "auto" and "board" in captured["nodes"].get(node["id"], {}):
            return str(captured["nodes"][node["id"]]["board"]["board_id"])
    return None


def _compare(ours: dict[str, Any], captured: dict[str, Any], *, ignore: set[str]) -> None:
    assert set(ours["nodes"]) == set(captured["nodes"])
    assert edge_set(ours) == edge_set(captured)
    fed = {(d, f) for _, _, d, f in edge_set(captured)}
    for node_id, node in ours["nodes"].items():
        theirs = captured["nodes"][node_id]
        assert node["type"] == theirs["type"]
        schema = BUNDLED.get(node["type"])
        assert schema is not None
        for key, value in node.items():
            if key in ignore:
                continue
            assert key in theirs, (node_id, key)
            assert theirs[key] == value, (node_id, node["type"], key, value, theirs[key])
        for key, value in theirs.items():
            if key in node or key in ignore or (node_id, key) in fed:
                continue
            # the server filled in the schema default for what the GUI left out
            assert value == schema.inputs.get(key, {}).get("default"), (node_id, key, value)


@needs_captures
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize("typed", [True, False], ids=["schema", "inferred"])
def test_graph_equals_the_gui_run_of_the_embedded_workflow(capture: Path, typed: bool) -> None:
    item = json.loads(capture.read_text())
    captured = item["session"]["graph"]
    h = handle(item["workflow"], typed)
    ours = h.build_graph(board=_auto_board(item["workflow"], captured))
    _compare(ours, captured, ignore=set())


@needs_captures
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_graph_of_the_seed_file_equals_the_gui_run(capture: Path) -> None:
    item = json.loads(capture.read_text())
    name = capture.stem.removeprefix("call-wf-")
    data = json.loads((SEED_WORKFLOWS / f"{name}.json").read_text())
    captured = item["session"]["graph"]
    ours = handle(data).build_graph(board=_auto_board(data, captured))
    _compare(ours, captured, ignore=REVISION_FIELDS)


@needs_captures
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_attached_workflow_is_the_gui_workflow_without_id(capture: Path) -> None:
    item = json.loads(capture.read_text())
    name = capture.stem.removeprefix("call-wf-")
    data = json.loads((SEED_WORKFLOWS / f"{name}.json").read_text())
    body = handle(data).build_batch()
    attached = body["batch"]["workflow"]
    assert "id" not in attached
    assert attached["nodes"] == [
        {k: n[k] for k in ("id", "type", "data", "position")}
        for n in data["nodes"]
        if n["type"] in ("invocation", "notes", "connector")
    ]
    assert set(attached) == set(item["workflow"]) | {"nodes", "edges"}


# -- GUI semantics on the project's examples -----------------------------------------------


def test_notes_and_collapsed_edges_are_dropped() -> None:
    data = example("notes-collapsed")
    graph = handle(data).build_graph()
    add, mul = node_of(data, "add"), node_of(data, "mul")
    assert set(graph["nodes"]) == {add["id"], mul["id"]}
    assert edge_set(graph) == {(add["id"], "value", mul["id"], "a")}
    assert "a" not in graph["nodes"][mul["id"]]  # the literal of a fed input is removed
    assert graph["nodes"][add["id"]] == {
        "type": "add",
        "id": add["id"],
        "a": 2,
        "b": 3,
        "use_cache": True,
        "is_intermediate": True,
    }


def test_connector_chains_resolve_to_the_real_source() -> None:
    data = example("connectors-v4")
    graph = handle(data).build_graph()
    source = node_of(data, "integer")
    plus, times = node_of(data, "add"), node_of(data, "mul")
    assert set(graph["nodes"]) == {source["id"], plus["id"], times["id"]}
    assert edge_set(graph) == {
        (source["id"], "value", plus["id"], "a"),
        (source["id"], "value", times["id"], "a"),
    }


def test_connector_with_nothing_feeding_it_drops_its_edges() -> None:
    data = example("connectors-v4")
    data["edges"] = [
        e
        for e in data["edges"]
        if e["targetHandle"] != "in" or e["source"] != node_of(data, "integer")["id"]
    ]
    graph = handle(data).build_graph(validate=False)
    assert graph["edges"] == []


def test_duplicate_edges_are_sent_once() -> None:
    data = example("notes-collapsed")
    twin = copy.deepcopy(data["edges"][0])
    twin["id"] = "twin"
    data["edges"].append(twin)
    assert len(handle(data).build_graph()["edges"]) == 1


def test_use_cache_and_is_intermediate_come_from_the_node() -> None:
    data = example("image-pipeline")
    h = handle(data)
    graph = h.build_graph()
    save = node_of(data, "save_image")
    assert graph["nodes"][save["id"]]["is_intermediate"] is False
    assert graph["nodes"][save["id"]]["use_cache"] is False
    blank = node_of(data, "blank_image")
    assert graph["nodes"][blank["id"]]["is_intermediate"] is True
    h.set_node(blank["id"], use_cache=False, is_intermediate=False)
    graph = h.build_graph()
    assert graph["nodes"][blank["id"]]["use_cache"] is False
    assert graph["nodes"][blank["id"]]["is_intermediate"] is False
    assert handle(data).build_graph()["nodes"][blank["id"]]["use_cache"] is True
    with pytest.raises(ValidationError, match="no invocation node"):
        h.set_node("ghost", use_cache=True)


def test_board_auto_and_none_like_the_gui() -> None:
    data = example("image-pipeline")
    save = node_of(data, "save_image")["id"]
    h = handle(data)
    assert "board" not in h.build_graph()["nodes"][save]
    assert h.build_graph(board="b-1")["nodes"][save]["board"] == {"board_id": "b-1"}
    h.set("Board", "none")
    assert "board" not in h.build_graph(board="b-1")["nodes"][save]
    h.set("Board", "b-2")
    assert h.build_graph(board="b-1")["nodes"][save]["board"] == {"board_id": "b-2"}
    # unset board inputs of other image nodes stay unset without an auto-add board
    blank = node_of(data, "blank_image")["id"]
    assert "board" not in h.build_graph()["nodes"][blank]
    assert h.build_graph(board="b-1")["nodes"][blank]["board"] == {"board_id": "b-1"}


def test_batch_and_generator_nodes_become_batch_data() -> None:
    data = example("batch-generator")
    h = handle(data)
    body = h.build_batch()
    graph = body["batch"]["graph"]
    plus = node_of(data, "add")["id"]
    assert set(graph["nodes"]) == {plus}
    assert graph["edges"] == []
    assert graph["nodes"][plus]["a"] == 0  # kept like the GUI does; each item replaces it
    assert body["batch"]["data"] == [[{"node_path": plus, "field_name": "a", "items": [1, 2, 3]}]]


def _batch_workflow(groups: list[tuple[str, list[int]]]) -> dict[str, Any]:
    data = example("batch-generator")
    generator = node_of(data, "integer_generator")
    template = node_of(data, "integer_batch")
    plus = node_of(data, "add")
    data["nodes"] = [plus]
    data["edges"] = []
    data["form"]["elements"] = {
        "root": {"id": "root", "type": "container", "data": {"layout": "column", "children": []}}
    }
    targets = ["a", "b"]
    extra = [node_of(example("notes-collapsed"), "mul")]
    data["nodes"].extend(extra)
    for index, (group, items) in enumerate(groups):
        batch = copy.deepcopy(template)
        batch["id"] = batch["data"]["id"] = f"batch-{index}"
        batch["data"]["inputs"]["batch_group_id"]["value"] = group
        batch["data"]["inputs"]["integers"]["value"] = items
        data["nodes"].append(batch)
        target = plus if index < 2 else extra[0]
        data["edges"].append(
            {
                "id": f"e{index}",
                "type": "default",
                "source": batch["id"],
                "sourceHandle": "value",
                "target": target["id"],
                "targetHandle": targets[index % 2],
            }
        )
    assert generator
    return data


def test_batch_groups_zip_and_multiply_like_the_gui() -> None:
    zipped = handle(_batch_workflow([("Group 1", [1, 2]), ("Group 1", [10, 20])])).build_batch()
    assert [len(group) for group in zipped["batch"]["data"]] == [2]
    product = handle(_batch_workflow([("None", [1, 2]), ("None", [10, 20])])).build_batch()
    assert [len(group) for group in product["batch"]["data"]] == [1, 1]
    with pytest.raises(ValidationError, match="same number of items"):
        handle(_batch_workflow([("Group 2", [1, 2]), ("Group 2", [1])])).build_batch()
    with pytest.raises(ValidationError, match="no items"):
        handle(_batch_workflow([("None", [])])).build_batch(validate=False)


def test_batch_items_are_type_checked_against_the_target_input() -> None:
    data = _batch_workflow([("None", [1, 2])])
    data["nodes"][-1]["data"]["inputs"]["integers"]["value"] = [1, 2.5]
    with pytest.raises(ValidationError, match="item 1"):
        handle(data).build_batch(validate=False)


def test_generators_compute_like_the_gui() -> None:
    assert MersenneTwister(5489).genrand_int32() == 3499211612  # the MT19937 reference value
    seeded = {
        "type": "float_generator_random_distribution_uniform",
        "min": 0,
        "max": 1,
        "count": 3,
        "seed": 42,
    }
    first = generator_values("float_generator", seeded, "g")
    assert first == generator_values("float_generator", seeded, "g")
    assert all(0 <= v < 1 for v in first)
    assert generator_values(
        "float_generator",
        {"type": "float_generator_linear_distribution", "start": 0, "end": 1, "count": 5},
        "g",
    ) == [0, 0.25, 0.5, 0.75, 1]
    assert generator_values(
        "integer_generator",
        {"type": "integer_generator_parse_string", "input": "1, 2,x, 3", "splitOn": ","},
        "g",
    ) == [1, 2, 3]
    assert generator_values(
        "string_generator",
        {"type": "string_generator_parse_string", "input": "a\nb", "splitOn": "\\n"},
        "g",
    ) == ["a", "b"]
    with pytest.raises(ValidationError, match="resolve_generators"):
        generator_values(
            "string_generator", {"type": "string_generator_dynamic_prompts_random"}, "g"
        )
    with pytest.raises(ValidationError, match="unknown generator"):
        generator_values("float_generator", {"type": "nope"}, "g")



# Expected values follow the 6.14 GUI's own generator code (its formulas, JavaScript's
# parseFloat/parseInt/Math.round, the mersenne-twister package's random()).
@pytest.mark.parametrize(
    ("kind", "spec", "expected"),
    [
        ("float", {"type": "float_generator_arithmetic_sequence", "start": 0.5, "step": 0.25,
                   "count": 3}, [0.5, 0.75, 1.0]),
        ("float", {"type": "float_generator_arithmetic_sequence", "start": 2, "step": 0,
                   "count": 5}, [2]),
        ("float", {"type": "float_generator_random_distribution_uniform", "min": 0, "max": 1,
                   "count": 1, "seed": 5489}, [3499211612 / 2**32]),
        ("float", {"type": "float_generator_parse_string", "input": "1.5, x, 2e1, .5abc",
                   "splitOn": ","}, [1.5, 20.0, 0.5]),
        ("float", {"type": "float_generator_parse_string"},
         [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]),
        ("float", {"type": "float_generator_arithmetic_sequence", "values": [9.5]}, [9.5]),
        ("integer", {"type": "integer_generator_arithmetic_sequence", "start": 3, "step": -2,
                     "count": 3}, [3, 1, -1]),
        ("integer", {"type": "integer_generator_linear_distribution", "start": 0, "end": 10,
                     "count": 4}, [0, 3, 7, 10]),
        ("integer", {"type": "integer_generator_linear_distribution", "start": 0, "end": 1,
                     "count": 3}, [0, 1, 1]),  # Math.round(0.5) is 1
        ("integer", {"type": "integer_generator_random_distribution_uniform", "min": 0,
                     "max": 10, "count": 1, "seed": 5489}, [8]),
        ("integer", {"type": "integer_generator_parse_string", "input": "7, 08, -3x, +4, 1.9"},
         [7, 8, -3, 4, 1]),
        ("integer", {"type": "integer_generator_parse_string"}, list(range(1, 11))),
        # 6.14 reads stored "values" only for float generators.
        ("integer", {"type": "integer_generator_arithmetic_sequence", "start": 1, "step": 1,
                     "count": 2, "values": [99]}, [1, 2]),
        ("string", {"type": "string_generator_parse_string", "input": "a,,b", "splitOn": ""},
         ["a,,b"]),
    ],
)
def test_each_generator_gives_the_guis_values(
    kind: str, spec: dict[str, Any], expected: list[Any]
) -> None:
    assert generator_values(f"{kind}_generator", spec, "g") == pytest.approx(expected)

# -- the enqueue body ----------------------------------------------------------------------


def test_build_batch_is_the_enqueue_body() -> None:
    h = handle(example("arithmetic-form"))
    body = h.build_batch(runs=3, origin="tests", destination="here", prepend=True)
    assert body["prepend"] is True
    batch = body["batch"]
    assert uuid.UUID(batch["batch_id"])
    assert batch["runs"] == 3
    assert batch["origin"] == "tests"
    assert batch["destination"] == "here"
    assert batch["data"] == []
    assert batch["workflow"]["name"] == "Arithmetic form"
    assert h.build_batch(batch_id="mine")["batch"]["batch_id"] == "mine"
    assert h.build_batch(attach_workflow=False)["batch"].get("workflow") is None
    for bad in ({"runs": 0}, {"runs": True}, {"batch_id": ""}, {"prepend": "yes"}):
        with pytest.raises(ValidationError):
            h.build_batch(**bad)  # type: ignore[arg-type]


def test_attached_workflow_carries_the_handles_values() -> None:
    h = handle(example("arithmetic-form"))
    h.set("A", 11)
    attached = h.build_batch()["batch"]["workflow"]
    node = next(n for n in attached["nodes"] if n["id"] == h.input("A").node_id)
    assert node["data"]["inputs"]["value"]["value"] == 11
    data = example("arithmetic-form")
    del data["contact"]
    assert handle(data).build_batch()["batch"]["workflow"] is None  # like the GUI: invalid -> null


def test_user_batch_data_is_checked_per_input() -> None:
    h = handle(example("arithmetic-form"))
    a, factor = h.input("A"), h.input("Factor")
    body = h.build_batch(
        data=[
            [{"input": "A", "items": [1, 2]}, h.batch_datum("B", [3, 4])],
            [{"node_path": factor.node_id, "field_name": "value", "items": [1, 0.5]}],
        ]
    )
    assert body["batch"]["data"] == [
        [
            {"node_path": a.node_id, "field_name": "value", "items": [1, 2]},
            {"node_path": h.input("B").node_id, "field_name": "value", "items": [3, 4]},
        ],
        [{"node_path": factor.node_id, "field_name": "value", "items": [1.0, 0.5]}],
    ]
    with pytest.raises(ValidationError, match="item 1") as caught:
        h.build_batch(data=[[{"input": "A", "items": [1, "two"]}]])
    assert "'A'" in str(caught.value)
    with pytest.raises(ValidationError, match="not a node of the graph"):
        h.build_batch(data=[[{"node_path": "ghost", "field_name": "value", "items": [1]}]])
    with pytest.raises(ValidationError, match="no input"):
        h.build_batch(data=[[{"node_path": a.node_id, "field_name": "nope", "items": [1]}]])
    with pytest.raises(ValidationError, match="twice"):
        h.build_batch(data=[[h.batch_datum("A", [1])], [h.batch_datum("A", [2])]])
    with pytest.raises(ValidationError, match="different lengths"):
        h.build_batch(data=[[h.batch_datum("A", [1]), h.batch_datum("B", [1, 2])]])
    with pytest.raises(ValidationError, match="list of groups"):
        h.build_batch(data=[h.batch_datum("A", [1])])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="must not be empty"):
        h.batch_datum("A", [])
    math_id = next(n.id for n in h.definition.nodes.values() if n.type == "integer_math")
    with pytest.raises(ValidationError, match="fed by an edge"):
        h.build_batch(data=[[{"node_path": math_id, "field_name": "a", "items": [1]}]])


def test_required_input_without_value_fails_before_any_request() -> None:
    h = handle(example("image-input"))
    with pytest.raises(ValidationError) as caught:
        h.build_graph()
    assert "'Image'" in str(caught.value)
    assert "needs a value" in str(caught.value)
    assert h.validate()
    h.build_graph(validate=False)
    h.set("Image", "existing.png")
    assert h.validate() == []
    node = h.build_graph()["nodes"][h.input("Image").node_id]
    assert node["image"] == {"image_name": "existing.png"}


def test_local_image_must_be_uploaded_before_building(tmp_path: Path) -> None:
    h = handle(example("image-input"))
    h.set("Image", tmp_path / "in.png")
    assert len(h.local_images()) == 1
    with pytest.raises(ValidationError, match="upload_images"):
        h.build_graph()
    with pytest.raises(ValidationError, match="upload"):
        h.build_batch(data=[[{"input": "Image", "items": [tmp_path / "x.png"]}]], validate=False)


def test_unknown_node_type_on_this_server_is_a_workflow_error() -> None:
    data = example("notes-collapsed")
    node_of(data, "add")["data"]["type"] = "my_pack_adder"
    with pytest.raises(WorkflowError, match="my_pack_adder"):
        handle(data).build_graph()
    assert handle(data, typed=False).build_graph()  # offline nothing is known to be missing


def test_inputs_the_server_does_not_know_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    data = example("notes-collapsed")
    node = node_of(data, "add")
    node["data"]["inputs"]["old_field"] = {"name": "old_field", "label": "", "value": 1}
    with caplog.at_level(logging.WARNING, logger="invokeai_client"):
        graph = handle(data).build_graph()
    assert "old_field" not in graph["nodes"][node["id"]]
    assert "old_field" in caplog.text
    assert handle(data, typed=False).build_graph()["nodes"][node["id"]]["old_field"] == 1


def test_graph_ids_are_fresh_and_node_ids_kept() -> None:
    h = handle(example("iterate-collect"))
    first, second = h.build_graph(), h.build_graph()
    assert first["id"] != second["id"]
    assert first["nodes"] == second["nodes"]
    for node_id, node in first["nodes"].items():
        assert node["id"] == node_id
