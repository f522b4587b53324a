"""Results speak the user's words: ``field_values`` keyed by the swept labels, and
``result.image`` typed without None (a clear error when there is no image)."""

from __future__ import annotations

import pytest

from invokeai_client import FieldValues, InvokeAIError, RunFailedError
from invokeai_client.workflows import examples

from .conftest import Peer
from .test_runs import add_graph

pytestmark = pytest.mark.anyio

NAMES = [
    # (values by "node.field", names, expected mapping, lookups that must work)
    ({"n1.seed": 3}, {"n1.seed": "Seed"}, {"Seed": 3}, {"Seed": 3, "n1.seed": 3}),
    ({"n1.seed": 3}, {}, {"n1.seed": 3}, {"n1.seed": 3}),
    ({"a.value": 1, "b.value": 2}, {"a.value": "A"}, {"A": 1, "b.value": 2},
     {"A": 1, "a.value": 1, "b.value": 2}),
]


@pytest.mark.parametrize(("values", "names", "expected", "lookups"), NAMES)
def test_field_values_use_the_sweeps_names(
    values: dict[str, int], names: dict[str, str], expected: dict[str, int],
    lookups: dict[str, int],
) -> None:
    found = FieldValues(values, names)
    assert found == expected
    assert dict(found) == expected
    assert {key: found[key] for key in lookups} == lookups
    assert found.by_node() == values
    with pytest.raises(KeyError, match="not a swept input"):
        found["Steps"]


async def test_a_sweep_by_label_reports_its_values_by_label(peer: Peer) -> None:
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        a_key = wf.input("A").key
        batch = await wf.submit_batch({"A": [1, 2], 1: [10]})  # a label and an index
        results = await batch
    assert [dict(r.field_values) for r in results] == [{"A": 1, "B": 10}, {"A": 2, "B": 10}]
    assert results[1].field_values[a_key] == 2  # the full key still reads it
    assert batch.field_values(0) == {"A": 1, "B": 10}


async def test_result_image_needs_no_none_check(peer: Peer) -> None:
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        wf.set("Output width", 40).set("Output height", 30)
        result = await (await wf.submit())
        assert result.image.width == 40  # typed ImageRef, not ImageRef | None
        graph_result = await (await client.runs.submit(add_graph(1, 2)))
        with pytest.raises(InvokeAIError, match="made no new image") as caught:
            _ = graph_result.image
        assert "sum" in str(caught.value)


async def test_result_image_of_a_failed_item_raises_its_run_error(peer: Peer) -> None:
    async with peer.client() as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        batch = await wf.submit_batch({"Canvas width": [-1]})
        (result,) = await batch
    assert not result.ok
    with pytest.raises(RunFailedError):
        _ = result.image
