"""The typed enqueue body: every rule of a batch, table-driven (no client, no server); the
last test sends a raw body with keys InvokeAI ignores to both peers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from invokeai_client import AsyncClient, ValidationError
from invokeai_client._limits import encoded_limit_problem, json_limit_problem
from invokeai_client.types.batch import (
    ONCE_RULE,
    RUNS_RULE,
    ZIP_RULE,
    Batch,
    BatchDatum,
    EnqueueBody,
    JSONText,
)
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

from .helpers import BUNDLED


def graph() -> dict[str, Any]:
    """Two integer nodes into an ``add`` (API form)."""
    return {
        "id": "g",
        "nodes": {
            "a": {"id": "a", "type": "integer", "value": 1},
            "b": {"id": "b", "type": "integer", "value": 2},
            "sum": {"id": "sum", "type": "add"},
        },
        "edges": [],
    }


def datum(node: str, items: list[Any], field: str = "value") -> dict[str, Any]:
    return {"node_path": node, "field_name": field, "items": items}


def body(**batch: Any) -> dict[str, Any]:
    prepend = batch.pop("prepend", False)
    return {"batch": {"graph": graph(), **batch}, "prepend": prepend}


# (case id, raw body, pattern of the message, input, rule)
BROKEN: list[tuple[str, Any, str, str, str]] = [
    ("not a mapping", "body", r"an enqueue body is", "body", "has a 'batch' object"),
    ("no batch", {"graph": graph()}, r"an enqueue body is", "body", "has a 'batch' object"),
    ("graph without nodes", {"batch": {"graph": {"edges": []}}}, r"graph object with a 'nodes'",
     "graph", "graph with nodes"),
    ("empty graph", {"batch": {"graph": {"nodes": {}}}}, r"nothing to run", "graph",
     "at least one node"),
    ("node id is not its key", {"batch": {"graph": {"nodes": {"a": {"id": "b"}}}}},
     r"must be its key", "a", "node id matches its key"),
    ("runs 0", body(runs=0), r"runs must be an int >= 1, got 0", "runs", "integer >= 1"),
    ("runs True", body(runs=True), r"runs must be", "runs", "integer >= 1"),
    ("batch id redacted", body(batch_id="redacted"), r"batch_id must be", "batch_id", "string"),
    ("origin not text", body(origin=3), r"origin must be a string", "origin", "string"),
    ("prepend text", body(prepend="yes"), r"prepend must be True or False", "prepend", "bool"),
    ("data not a list", body(data="x"), r"list of groups", "data", "list of lists"),
    ("empty group", body(data=[[]]), r"non-empty list", "data", "non-empty groups"),
    ("datum not an object", body(data=[[3]]), r"not a batch datum", "data",
     "{node_path, field_name, items}"),
    ("unknown node", body(data=[[datum("zz", [1])]]), r"not in the graph", "zz.value",
     "node in the graph"),
    ("no field name", body(data=[[datum("a", [1], field="")]]), r"has no field_name", "a.",
     "field_name"),
    ("empty items", body(data=[[datum("a", [])]]), r"non-empty list of items", "a.value",
     "non-empty items"),
    ("mixed item types", body(data=[[datum("a", [1, "2"])]]), r"mixes value types", "a.value",
     "one type per field"),
    ("booleans", body(data=[[datum("a", [True])]]), r"holds boolean values", "a.value",
     "number, string, image field or list"),
    ("a color is not batchable", body(data=[[datum("a", [{"r": 1}])]]),
     r"not an image or video", "a.value", "number, string, image field or list"),
    ("item type differs from the literal", body(data=[[datum("a", ["x"])]]),
     r"holds string values but the field holds a number", "a.value", "number values"),
    ("one field twice", body(data=[[datum("a", [1])], [datum("a", [2])]]), r"twice", "a.value",
     "each input once"),
    ("zipped lengths differ", body(data=[[datum("a", [1, 2]), datum("b", [1])]]),
     r"different lengths", "b.value", "same length in a group"),
]


@pytest.mark.parametrize(("raw", "pattern", "where", "rule"), [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])
def test_every_rule_names_the_input_and_the_rule(raw: Any, pattern: str, where: str,
                                                 rule: str) -> None:
    with pytest.raises(ValidationError, match=pattern) as caught:
        EnqueueBody.parse(raw)
    assert (caught.value.input, caught.value.rule) == (where, rule)


# (case id, raw body, items made, JSON request expected beside the graph)
GOOD: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    ("one item", body(batch_id="b1"), 1, {"batch_id": "b1", "runs": 1}),
    ("runs", body(batch_id="b1", runs=3, origin="me"), 3,
     {"batch_id": "b1", "runs": 3, "origin": "me"}),
    ("a product of groups", body(batch_id="b1", runs=2, data=[[datum("a", [1, 2, 3])],
                                                               [datum("b", [4, 5])]]),
     12, {"batch_id": "b1", "runs": 2,
          "data": [[datum("a", [1, 2, 3])], [datum("b", [4, 5])]]}),
    ("zipped", body(batch_id="b1", data=[[datum("a", [1, 2]), datum("b", (3, 4))]],
                    workflow=None), 2,
     {"batch_id": "b1", "runs": 1, "data": [[datum("a", [1, 2]), datum("b", [3, 4])]],
      "workflow": None}),
]


@pytest.mark.parametrize(("raw", "count", "expected"), [c[1:] for c in GOOD],
                         ids=[c[0] for c in GOOD])
def test_good_bodies_parse_to_the_same_request(raw: dict[str, Any], count: int,
                                               expected: dict[str, Any]) -> None:
    parsed = EnqueueBody.parse(raw)
    assert parsed.item_count == count
    assert parsed.to_dict() == {"batch": {"graph": graph(), **expected}, "prepend": False}
    assert EnqueueBody.parse(parsed) is parsed
    assert EnqueueBody.parse(parsed.to_dict()) == parsed


def test_models_are_built_with_the_same_rules() -> None:
    made = EnqueueBody(batch=Batch(graph=graph(), data=[[BatchDatum(**datum("a", [1, 2]))]]))
    assert made.item_count == 2
    assert made.batch.batch_id
    with pytest.raises(ValidationError, match="runs must be"):
        Batch(graph=graph(), runs=0)
    again = made.with_batch_id()
    assert again.batch_id != made.batch_id
    assert again.batch.graph is made.batch.graph
    assert made.with_origin("here").batch.origin == "here"
    with pytest.raises(ValidationError):
        made.with_batch_id(7)  # type: ignore[arg-type]


def _form() -> WorkflowHandle:
    """arithmetic-form: inputs 'A' and 'B' (integers)."""
    return WorkflowHandle(WorkflowDefinition.from_file(examples.path("arithmetic-form")),
                          schemas=BUNDLED)


RUNS_TEXT = r"^runs must be an int >= 1, got 0$"
COMPILE_RUNS_TEXT = r"^runs must be an integer >= 1, got 0$"  # the compile stage's 0.1.0 words
ZIP_TEXT = (r"^batch data group 0 zips lists of different lengths: \S+ has 1 items, the group's "
            r"first 2; the datums of one group must have the same number of items$")
# (case id, a way to break a batch rule, the rule, its text): each rule is written once, in
# types.batch, and every way of making a batch says it the same way
ONE_RULE_TEXT: list[tuple[str, Any, str, str]] = [
    ("runs: a raw body", lambda: EnqueueBody.parse(body(runs=0)), RUNS_RULE, RUNS_TEXT),
    ("runs: the compile stage", lambda: _form().compile(runs=0), RUNS_RULE, COMPILE_RUNS_TEXT),
    ("zip: a raw body", lambda: EnqueueBody.parse(
        body(data=[[datum("a", [1, 2]), datum("b", [1])]])), ZIP_RULE, ZIP_TEXT),
    ("zip: a handle's data", lambda: _form().compile(
        data=[[{"input": "A", "items": [1, 2]}, {"input": "B", "items": [1]}]]),
     ZIP_RULE, ZIP_TEXT),
    ("once: a raw body", lambda: EnqueueBody.parse(
        body(data=[[datum("a", [1])], [datum("a", [2])]])), ONCE_RULE, r"twice"),
    ("once: a sweep", lambda: _form().sweep_groups(
        {"A": [1], _form().input("A").key: [2]}), ONCE_RULE, r"twice"),
]


@pytest.mark.parametrize(("make", "rule", "text"), [c[1:] for c in ONE_RULE_TEXT],
                         ids=[c[0] for c in ONE_RULE_TEXT])
def test_a_batch_rule_reads_the_same_whatever_the_way_in(make: Any, rule: str,
                                                         text: str) -> None:
    with pytest.raises(ValidationError, match=text) as caught:
        make()
    assert caught.value.rule == rule


# -- encode: the submit path's one pass (rules + bytes + size limits) -------------------------


def nest(depth: int) -> Any:
    """``depth`` lists, one inside the other."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def with_value(value: Any, **batch: Any) -> dict[str, Any]:
    """A body whose node ``a`` holds ``value`` in its ``extra`` field."""
    made = body(**batch)
    made["batch"]["graph"]["nodes"]["a"]["extra"] = value
    return made


# Bodies at and past the size limits (nesting is counted from the body: the graph's node
# fields sit 5 levels deep, so a value nested 95 deep reaches 100), and values whose JSON
# looks like a limit without being one (digits in strings, many brackets, shallow).
LIMITS: list[tuple[str, Any]] = [
    ("nested to the limit", with_value(nest(95))),
    ("nested past the limit", with_value(nest(96))),
    ("nested far past the limit", with_value(nest(5000))),
    ("many brackets, shallow", with_value([[[]] for _ in range(300)])),
    ("many brackets, deep at the end", with_value([*([[]] for _ in range(300)), nest(96)])),
    ("brackets in strings", with_value(["[[[{{{" * 100])),
    ("the largest double as an int", with_value(int(1.7976931348623157e308))),
    ("an int beyond a double", with_value(10**400)),
    ("a negative int beyond a double", with_value(-(10**400))),
    ("an int past the digit limit", with_value(10**5000)),
    ("309 digits in a string", with_value("1" * 400)),
    ("a float", with_value(1e308)),
    ("a set (not JSON)", with_value({1, 2})),
    ("a cycle", None),
    ("past the limit and a rule broken", with_value(nest(96), runs=0)),
    ("a rule broken", body(runs=0)),
    ("an unknown batch field", body(colour="red")),
    ("an unknown body field", {**body(), "colour": "red"}),
    ("a workflow as JSON text", body(workflow=JSONText('{"nodes": [[[1]]]}'))),
    ("a workflow nested past the limit", body(workflow={"a": nest(98)})),
    ("a Batch model inside", {"batch": Batch(graph=graph()), "prepend": True}),
]


def _cycle() -> dict[str, Any]:
    made = body()
    made["batch"]["graph"]["nodes"]["a"]["self"] = made["batch"]["graph"]["nodes"]["a"]
    return made


def _outcome(make: Any) -> Any:
    try:
        return make()
    except Exception as exc:
        return type(exc), str(exc), getattr(exc, "input", None), getattr(exc, "rule", None)


@pytest.mark.parametrize("raw", [*(c[1] for c in BROKEN), *(c[1] for c in GOOD),
                                 *(c[1] for c in LIMITS)],
                         ids=[*(c[0] for c in BROKEN), *(c[0] for c in GOOD),
                              *(c[0] for c in LIMITS)])
def test_encode_agrees_with_parse_and_to_json(raw: Any) -> None:
    if raw is None:
        raw = _cycle()
    raw = {**raw, "batch": {**raw["batch"], "batch_id": "b1"}} if (
        isinstance(raw, dict) and isinstance(raw.get("batch"), dict)) else raw

    def by_model() -> tuple[dict[str, Any], int, bytes]:
        parsed = EnqueueBody.parse(raw)
        wire = parsed.to_dict()["batch"]
        wire.pop("workflow", None)
        return wire, parsed.item_count, parsed.to_json()

    def by_encode() -> tuple[dict[str, Any], int, bytes]:
        return tuple(EnqueueBody.encode(raw))  # type: ignore[return-value]

    assert _outcome(by_encode) == _outcome(by_model)


def test_encode_fills_the_default_origin_only_when_none_is_named() -> None:
    assert EnqueueBody.encode(body(), origin="sdk").batch["origin"] == "sdk"
    assert EnqueueBody.encode(body(origin="me"), origin="sdk").batch["origin"] == "me"
    parsed = EnqueueBody.parse(body())
    assert EnqueueBody.encode(parsed, origin="sdk").batch["origin"] == "sdk"
    assert parsed.batch.origin is None  # the model itself is not changed


@pytest.mark.parametrize("value", [nest(0), nest(50), nest(99), nest(100), nest(101),
                                   [nest(99)] * 3, {"k": nest(120)}, 10**400, [10**308],
                                   "9" * 500, [[]] * 200, {"a": [{"b": 10**309}]}])
def test_encoded_limits_are_the_walks(value: Any) -> None:
    encoded = json.dumps(value).encode()
    assert encoded_limit_problem(encoded, value) == json_limit_problem(value)


# -- keys InvokeAI ignores are kept and sent (a newer server may read them) -----------------

# (case id, raw body, the request sent)
UNKNOWN_KEYS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("in the batch", body(batch_id="b1", colour="red"),
     {"batch": {"batch_id": "b1", "graph": graph(), "runs": 1, "colour": "red"},
      "prepend": False}),
    ("in the body", {**body(batch_id="b1"), "future": {"x": [1]}},
     {"batch": {"batch_id": "b1", "graph": graph(), "runs": 1}, "prepend": False,
      "future": {"x": [1]}}),
    ("in a datum", body(batch_id="b1", data=[[{**datum("a", [1, 2]), "typo": 9}]]),
     {"batch": {"batch_id": "b1", "graph": graph(), "runs": 1,
                "data": [[{**datum("a", [1, 2]), "typo": 9}]]}, "prepend": False}),
    ("beside a workflow", body(batch_id="b1", workflow=JSONText('{"w": 1}'), later=[2]),
     {"batch": {"batch_id": "b1", "graph": graph(), "runs": 1, "later": [2],
                "workflow": {"w": 1}}, "prepend": False}),
]


@pytest.mark.parametrize(("raw", "sent"), [c[1:] for c in UNKNOWN_KEYS],
                         ids=[c[0] for c in UNKNOWN_KEYS])
def test_unknown_keys_are_kept_and_sent_as_they_are(raw: dict[str, Any],
                                                    sent: dict[str, Any]) -> None:
    for made in (EnqueueBody.parse(raw), EnqueueBody.model_validate(raw), EnqueueBody(**raw)):
        assert made.to_dict() == sent
        assert json.loads(made.to_json()) == sent
        assert json.loads(EnqueueBody.encode(made).body) == sent
    assert json.loads(EnqueueBody.encode(raw).body) == sent


# -- a body made from a caller's dict shares nothing with it ---------------------------------

MAKERS: list[tuple[str, Any]] = [
    ("parse", EnqueueBody.parse),
    ("model_validate", EnqueueBody.model_validate),
    ("constructor", lambda raw: EnqueueBody(**raw)),
    ("a Batch inside", lambda raw: EnqueueBody(batch=Batch(**raw["batch"]))),
]


@pytest.mark.parametrize("make", [c[1] for c in MAKERS], ids=[c[0] for c in MAKERS])
def test_bodies_made_from_one_template_dict_keep_their_own_values(make: Any) -> None:
    template = body(batch_id="b1", data=[[datum("a", [1, 2])]], workflow={"nodes": [{"x": 1}]},
                    extra={"k": [1]})
    made = []
    for value in (10, 20, 30):
        template["batch"]["graph"]["nodes"]["b"]["value"] = value
        made.append(make(template))
    first = json.loads(made[0].to_json())
    template["batch"]["graph"]["nodes"].clear()
    template["batch"]["data"][0][0]["items"].append(3)
    template["batch"]["workflow"]["nodes"].clear()
    template["batch"]["extra"]["k"].append(2)
    assert [m.batch.graph["nodes"]["b"]["value"] for m in made] == [10, 20, 30]
    assert json.loads(made[0].to_json()) == first
    assert first["batch"]["data"] == [[datum("a", [1, 2])]]
    assert first["batch"]["workflow"] == {"nodes": [{"x": 1}]}
    assert first["batch"]["extra"] == {"k": [1]}


# -- a body dumps to JSON with pydantic and reads back the same -------------------------------


def _compiled(name: str) -> EnqueueBody:
    made = WorkflowHandle(WorkflowDefinition.from_file(examples.path(name)), schemas=BUNDLED)
    return made.compile()


DUMPED: list[tuple[str, Any]] = [
    ("a compiled body", lambda: _compiled("arithmetic-form")),
    ("a compiled body with batch data", lambda: _compiled("batch-generator")),
    ("a raw body with a workflow dict", lambda: EnqueueBody.parse(
        body(batch_id="b1", runs=2, data=[[datum("a", [1, 2])]], workflow={"w": [1]}))),
    ("unknown keys", lambda: EnqueueBody.parse(UNKNOWN_KEYS[3][1])),
]


@pytest.mark.parametrize("make", [c[1] for c in DUMPED], ids=[c[0] for c in DUMPED])
def test_a_body_dumps_to_json_and_reads_back_the_same(make: Any) -> None:
    made: EnqueueBody = make()
    again = EnqueueBody.model_validate_json(made.model_dump_json())
    assert again == made
    assert again.to_json() == made.to_json()
    assert EnqueueBody.model_validate(made.model_dump(mode="json")).to_json() == made.to_json()
    assert json.loads(made.model_dump_json()) == made.model_dump(mode="json")


@pytest.mark.anyio
async def test_a_raw_body_with_keys_invokeai_ignores_runs(client: AsyncClient) -> None:
    add = {
        "nodes": {"a": {"id": "a", "type": "integer", "value": 3},
                  "s": {"id": "s", "type": "add", "b": 4}},
        "edges": [{"source": {"node_id": "a", "field": "value"},
                   "destination": {"node_id": "s", "field": "a"}}],
    }
    raw = {"batch": {"graph": add, "runs": 1, "future_field": 1,
                     "data": [[{"node_path": "a", "field_name": "value", "items": [1, 2],
                                "typo": 9}]]},
           "prepend": False, "future": {"x": 1}}
    batch = await client.runs.enqueue(raw)
    results = await batch.results(timeout=120)
    assert sorted(result.outputs["s"] for result in results) == [5, 6]
