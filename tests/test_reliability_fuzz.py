"""Reliability, class 4: a fuzz pass of generated workflow documents and input values that
reach the size and depth limits. Only WorkflowError / ValidationError may come out, and the
pass ends (no hang).

A fast deterministic generator (``random.Random(seed)``), not hypothesis: each document is a
seed workflow with a few changes applied by copying only the containers on the changed path,
so 10,000 documents cost seconds. ``IVK_FUZZ_DOCUMENTS`` / ``IVK_FUZZ_SEED`` explore more.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invokeai_client import ValidationError, WorkflowError
from invokeai_client.fields import InvocationSchemas
from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

from .conftest import SEED_WORKFLOWS

DOCUMENTS = int(os.environ.get("IVK_FUZZ_DOCUMENTS", "10000"))
SEED = int(os.environ.get("IVK_FUZZ_SEED", "20261205"))
EXPECTED = (WorkflowError, ValidationError)
BUNDLED = InvocationSchemas.bundled()

SOURCES: list[dict[str, Any]] = [json.loads(examples.path(n).read_text()) for n in examples.names()]
if SEED_WORKFLOWS.is_dir():
    SOURCES += [json.loads(p.read_text()) for p in sorted(SEED_WORKFLOWS.glob("*.json"))]


def nested(depth: int, kind: str = "list") -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def nested_text(depth: int) -> str:
    return '{"meta": {"version": "3.0.0"}, "nodes": ' + "[" * depth + "]" * depth + "}"


# Values at and beyond every limit, built once (the SDK copies what it keeps).
LIMIT_VALUES: list[Any] = [
    10**400, -(10**400), 10**5000, 2**63, -(2**63) - 1, 2**1024, 1e308, -1e308,
    float("nan"), float("inf"), -float("inf"), 0, -0.0, True, None, "",
    "x" * 1_000_000, "\u202e\u0000\ud800", "é" * 5000,
    nested(99), nested(100), nested(101), nested(5000), nested(3000, "dict"),
    [nested(150)] * 3, {"image_name": nested(200, "dict")},
    list(range(10_000)), [10**400], {"k": 10**5000},
    b"\x89PNG\r\n\x1a\n", Path("x.png"), object(), (1, 2), {1, 2},
]


WHOLE_DOCUMENTS: list[Any] = [nested(3000, "dict"), nested(5000), "text", None, 10**5000]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = [_paths(source)[1:] for source in SOURCES]


def _changed(container: Any, path: tuple[Any, ...], change: Callable[[Any, Any], Any]) -> Any:
    """A copy of ``container`` with ``change(parent, key)`` applied at ``path``; only the
    containers on the path are copied."""
    head, *rest = path
    copied = copy.copy(container)
    if rest:
        copied[head] = _changed(container[head], tuple(rest), change)
    else:
        change(copied, head)
    return copied


def _document(rng: random.Random) -> Any:
    index = rng.randrange(len(SOURCES))
    document: Any = SOURCES[index]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(PATHS[index])
        value = rng.choice(LIMIT_VALUES)
        action = rng.random()

        def change(parent: Any, key: Any, value: Any = value, action: float = action) -> None:
            if action < 0.6:
                parent[key] = value
            elif action < 0.8:
                del parent[key]
            elif isinstance(parent, dict):
                parent[f"extra{rng.randrange(9)}"] = value
            else:
                parent.append(value)

        try:
            document = _changed(document, path, change)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # the path no longer exists after an earlier change
    if rng.random() < 0.05:
        return rng.choice([*WHOLE_DOCUMENTS, [document]])
    return document


def _use(definition: WorkflowDefinition, rng: random.Random) -> None:
    """Load it typed or untyped, set inputs to limit values, build the batch."""
    handle = WorkflowHandle(definition, schemas=BUNDLED if rng.random() < 0.5 else None)
    if handle.inputs:
        for _ in range(rng.randint(1, 3)):
            inp = rng.choice(handle.inputs)
            error: ValidationError | None = None
            try:
                handle.set(inp.index, rng.choice(LIMIT_VALUES))
            except ValidationError as exc:
                error = exc
            assert error is None or (error.input and error.rule)  # names the input and rule
    handle.validate()
    with contextlib.suppress(EXPECTED):
        handle.build_batch(validate=rng.random() < 0.5)


def test_fuzzed_documents_and_values_raise_only_sdk_errors() -> None:
    rng = random.Random(SEED)
    loaded = refused = 0
    for _ in range(DOCUMENTS):
        document = _document(rng)
        try:
            definition = WorkflowDefinition.from_dict(document)
        except WorkflowError:
            refused += 1
            continue
        loaded += 1
        _use(definition, rng)
    assert loaded + refused == DOCUMENTS
    assert loaded > DOCUMENTS // 10
    assert refused > DOCUMENTS // 10


def test_workflow_text_nested_beyond_the_limits_is_a_workflow_error() -> None:
    for depth in (101, 1000, 3000, 5000, 100_000):
        for text in (nested_text(depth), "[" * depth + "]" * depth,
                     '{"a": ' * depth + "1" + "}" * depth):
            try:
                WorkflowDefinition.from_json(text)
            except WorkflowError:
                continue
            raise AssertionError(f"depth {depth} was accepted")
    for big in ("1" * 5000, "-" + "9" * 400, "1e400"):
        with contextlib.suppress(WorkflowError):
            WorkflowDefinition.from_json('{"meta": {"version": "3.0.0"}, "x": ' + big + "}")
