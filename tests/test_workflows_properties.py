"""Property tests: whatever is done to a workflow's JSON, its values, keys or batch data, the
SDK answers with WorkflowError or ValidationError, never KeyError/TypeError/AttributeError."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invokeai_client import ValidationError, WorkflowError
from invokeai_client.fields import InvocationSchemas
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

from .conftest import SEED_WORKFLOWS

BUNDLED = InvocationSchemas.bundled()
EXPECTED = (WorkflowError, ValidationError)
SOURCES: list[dict[str, Any]] = [json.loads(examples.path(n).read_text()) for n in examples.names()]
if SEED_WORKFLOWS.is_dir():
    SOURCES += [json.loads(p.read_text()) for p in sorted(SEED_WORKFLOWS.glob("*.json"))]

# The suite explores the same examples on every run, so a red test is a change, not luck.
# Hunt for new failures with random, deeper searches (then keep each find as a plain test):
#   IVK_PROPERTY_RANDOM=1 IVK_PROPERTY_EXAMPLES=5000 pytest tests/test_workflows_properties.py
RANDOM = bool(os.environ.get("IVK_PROPERTY_RANDOM"))
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("IVK_PROPERTY_EXAMPLES", "150")),
    derandomize=not RANDOM,
    database=settings.default.database if RANDOM else None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

def nested(depth: int, kind: str = "list") -> Any:
    """A value nested ``depth`` deep (built without recursion)."""
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


# Values at the limits, which the shrinking-friendly strategies below never reach by chance.
# (built, not listed: hypothesis prints a strategy's elements, and 10**5000 cannot be printed)
LIMITS = st.builds(pow, st.sampled_from([10, -10, 2]), st.sampled_from([400, 1024, 5000])) | \
    st.sampled_from([1e308, -1e308]) | st.builds("x".__mul__, st.just(100_000))
DEEP = st.builds(nested, st.sampled_from([99, 100, 101, 3000, 5000]),
                 st.sampled_from(["list", "dict"]))

json_scalars = (
    st.none()
    | st.booleans()
    | LIMITS
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "auto",
            "none",
            "invocation",
            "connector",
            "notes",
            "default",
            "collapsed",
            "3.0.0",
            "4.0.0",
            "root",
            "node-field",
            "container",
        ]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
python_values = json_values | DEEP | st.sampled_from(
    [
        b"\x89PNG\r\n\x1a\n....",
        b"text",
        Path("some/file.png"),
        object(),
        math.pi,
        (1, 2, 3),
        {"image_name": "x.png"},
        {"board_id": "b"},
        {"r": 1, "g": 2, "b": 3},
        {"key": "k", "hash": "h", "name": "n", "base": "sdxl", "type": "main"},
        [1, 2.5, "x"],
    ]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if len(prefix) > 20:  # inside a deep value planted by an earlier change
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_workflows(draw: st.DrawFn) -> dict[str, Any]:
    workflow = copy.deepcopy(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(workflow)
        path = draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
        parent: Any = workflow
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        last = path[-1] if path else None
        if action == "replace" and path:
            parent[last] = draw(json_values | DEEP)
        elif action == "delete" and path:
            if isinstance(parent, dict):
                parent.pop(last, None)
            elif isinstance(parent, list) and parent:
                parent.pop(last)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        elif isinstance(parent, list):
            parent.append(draw(json_values))
    return workflow


def exercise(handle: WorkflowHandle) -> None:
    """Everything a user does with a loaded workflow that needs no server."""
    for inp in handle.inputs:
        assert handle.input(inp.key) is inp
        handle.get(inp.index)
    handle.values()
    handle.validate()
    handle.to_workflow_dict()
    for validate in (True, False):
        for call in (handle.build_graph, handle.build_batch):
            with contextlib.suppress(EXPECTED):
                call(validate=validate)
    handle.copy().model_fields()


@PROPERTY_SETTINGS
@given(workflow=mutated_workflows(), typed=st.booleans())
def test_mutated_workflow_json_only_raises_sdk_errors(
    workflow: dict[str, Any], typed: bool
) -> None:
    try:
        definition = WorkflowDefinition.from_dict(workflow)
        handle = WorkflowHandle(definition, schemas=BUNDLED if typed else None)
    except EXPECTED:
        return
    exercise(handle)


DEEP_TEXT = st.builds(
    lambda depth, opener, closer: opener * depth + closer * depth,
    st.sampled_from([101, 3000, 5000, 100_000]),
    st.sampled_from(["["]),
    st.sampled_from(["]"]),
) | st.builds(lambda depth: '{"a": ' * depth + "1" + "}" * depth,
              st.sampled_from([101, 3000, 100_000]))


@PROPERTY_SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
       | DEEP_TEXT | st.builds('{{"n": {}}}'.format, st.sampled_from(["9" * 5000, "1e400"])))
def test_arbitrary_text_only_raises_workflow_error(text: str) -> None:
    with pytest.raises(WorkflowError):
        WorkflowDefinition.from_json(text)


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SOURCES), typed=st.booleans(), data=st.data())
def test_any_value_for_any_input_only_raises_validation_error(
    source: dict[str, Any], typed: bool, data: st.DataObject
) -> None:
    handle = WorkflowHandle(
        WorkflowDefinition.from_dict(source), schemas=BUNDLED if typed else None
    )
    if not handle.inputs:
        return
    for _ in range(3):
        inp = data.draw(st.sampled_from(handle.inputs))
        value = data.draw(python_values)
        try:
            handle.set(inp.index, value)
        except ValidationError as exc:
            error = exc
            assert error.input
            assert error.rule
    exercise(handle)


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SOURCES), key=python_values)
def test_any_key_only_raises_validation_error(source: dict[str, Any], key: Any) -> None:
    handle = WorkflowHandle(WorkflowDefinition.from_dict(source), schemas=BUNDLED)
    with contextlib.suppress(ValidationError):
        handle.get(key)


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SOURCES), batch_data=json_values, runs=json_values)
def test_any_batch_data_only_raises_validation_error(
    source: dict[str, Any], batch_data: Any, runs: Any
) -> None:
    handle = WorkflowHandle(WorkflowDefinition.from_dict(source), schemas=BUNDLED)
    for kwargs in ({"data": batch_data}, {"runs": runs}, {"batch_id": batch_data}):
        with contextlib.suppress(EXPECTED):
            handle.build_batch(validate=False, **kwargs)


@PROPERTY_SETTINGS
@given(source=st.sampled_from(SOURCES), data=st.data())
def test_batch_items_for_real_inputs_are_checked(
    source: dict[str, Any], data: st.DataObject
) -> None:
    handle = WorkflowHandle(WorkflowDefinition.from_dict(source), schemas=BUNDLED)
    if not handle.inputs:
        return
    inp = data.draw(st.sampled_from(handle.inputs))
    items = data.draw(st.lists(python_values, max_size=4))
    try:
        datum = handle.batch_datum(inp.index, items)
    except ValidationError:
        return
    for item in datum["items"]:  # whatever passed is plain JSON the server can parse
        json.dumps(item, allow_nan=False)
