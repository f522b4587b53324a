"""A soak of the execution engine against the REAL InvokeAI 6.14.2, on one client.

One seeded mix of about 150 queue items (single submits, sweeps, iterate/collect graphs, an
image graph, failing divisions, cancels of pending and of running items) goes through ONE
``AsyncClient`` while several readers watch (``run.events()``, ``batch.events()``,
``batch.as_completed()``, ``await run``). Every run must end once, as the server's queue
item says (read back with ``client.queue.get``), with the outputs of the item's
``session.results``; events in order; nothing hangs; nothing is left running.

Whether a cancel sent while an item runs arrives before the item finishes depends on the
real server's timing, so for those items only "canceled or completed, as the server says"
is asserted. Another mix: ``SOAK_SEED=7``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter, defaultdict
from typing import Any

import anyio
import pytest

from invokeai_client import AsyncClient, RunError, RunTimeoutError, WorkflowResult
from invokeai_client.runs import BatchRun, RunEvent, WorkflowRun

from .conftest import Peer
from .test_runs import _ours, add_graph, div_graph, image_graph, iterate_graph
from .test_runs_chaos import (
    Expected,
    check_against_server,
    check_awaited,
    check_story,
    div_expected,
    image_expected,
    iterate_expected,
    outcome,
    read,
)

pytestmark = [pytest.mark.anyio, pytest.mark.real, pytest.mark.slow]

WAIT = 240.0
"""Bound of the whole soak: generous, since a hang is a bug, not slowness."""
SEED = int(os.environ.get("SOAK_SEED", "0"))


def slow_graph(size: int) -> dict[str, Any]:
    """An image graph whose blur takes a while, so that a cancel can meet it running."""
    graph = image_graph(size, size)
    graph["nodes"]["blur"]["radius"] = 40
    return graph


async def test_a_seeded_mix_of_runs_on_one_client_ends_as_the_server_says(
    real_server: Peer,
) -> None:
    rng = random.Random(f"soak-{SEED}")
    where = f"SOAK_SEED={SEED}"
    before = set(asyncio.all_tasks())
    expected: list[Expected] = []
    batches: list[BatchRun] = []
    stories: list[tuple[list[RunEvent], list[Expected]]] = []
    consumers: list[asyncio.Future[Any]] = []
    drained: dict[str, Counter[int]] = defaultdict(Counter)
    base = 1_000_000 + 10_000 * SEED

    def watch(exps: list[Expected], source: WorkflowRun | BatchRun) -> None:
        events: list[RunEvent] = []
        stories.append((events, exps))
        consumers.append(asyncio.ensure_future(read(source, events, 0)))

    async def as_completed(batch: BatchRun, key: str) -> None:
        async for result in batch.as_completed():
            drained[key][result.item_id] += 1

    async with AsyncClient(real_server.url) as client:
        client.runs.quiet_after = 2.0
        with anyio.fail_after(WAIT):
            # Cancels of pending items: the processor holds while they are sent.
            await client.queue.pause()
            try:
                pending = [await client.runs.submit(add_graph(i, -1)) for i in range(4)]
                held = await client.runs.submit_batch(
                    add_graph(0, -2),
                    data=[[{"node_path": "a", "field_name": "value", "items": [1, 2, 3]}]])
                for run in [*pending, *held.runs]:
                    expected.append(Expected(run, None, "canceled"))
                watch([expected[0]], pending[0])
                assert await pending[0].cancel() == "canceled", where
                assert await pending[1].cancel() == "canceled", where
                waiter = asyncio.ensure_future(pending[2].result())
                await asyncio.sleep(0.05)
                waiter.cancel()  # abandoning the await cancels the item
                with pytest.raises(asyncio.CancelledError):
                    await waiter
                with pytest.raises(RunTimeoutError) as late:
                    await pending[3].result(timeout=0.05)  # the deadline cancels it
                assert late.value.canceled, where
                assert await held.cancel() == 3, where
            finally:
                await client.queue.resume()

            # The mix, submitted concurrently.
            submits: list[Any] = []

            async def single(graph: dict[str, Any], make: Any) -> None:
                run = await client.runs.submit(graph)
                exp = make(run)
                expected.append(exp)
                if rng.random() < 0.3:
                    watch([exp], run)

            for i in range(80):
                submits.append(single(add_graph(i, base + i),
                                      lambda r, v=2 * i + base: Expected(r, v)))
            for stop in (rng.randint(1, 5) for _ in range(6)):
                submits.append(single(iterate_graph(stop),
                                      lambda r, s=stop: iterate_expected(r, s)))
            submits.append(single(image_graph(48, 40), lambda r: image_expected(r, (48, 40))))
            for a in (rng.randint(1, 99) for _ in range(2)):
                submits.append(single(div_graph(a, 0), lambda r, a=a: div_expected(r, a, 0)))

            async def sweep(size: int, offset: int, runs: int) -> None:
                data = [[{"node_path": "a", "field_name": "value", "items": list(range(size))}]]
                batch = await client.runs.submit_batch(add_graph(0, offset), data=data,
                                                       runs=runs)
                batches.append(batch)
                exps = [Expected(run, batch.field_values(run.index)["a.value"] + offset)
                        for run in batch.runs]
                expected.extend(exps)
                watch(exps, batch)
                for k in range(2):
                    consumers.append(asyncio.ensure_future(
                        as_completed(batch, f"{batch.batch_id}/{k}")))

            for n in range(3):
                submits.append(sweep(rng.randint(8, 12), base + 100_000 * (n + 1),
                                     rng.choice([1, 2])))
            rng.shuffle(submits)
            await asyncio.gather(*submits)

            # Cancels of (probably) running items: whether the cancel lands before the item
            # finishes is the server's timing, so the server's word decides.
            racing = [await client.runs.submit(slow_graph(512)) for _ in range(2)]
            race_exps = [Expected(run, None, None, node="save",
                                  nodes=frozenset({"blank", "blur", "save", "n"}),
                                  kind="image", extra=(512, 512)) for run in racing]
            expected.extend(race_exps)
            for exp in race_exps:
                watch([exp], exp.run)

            awaited = {id(exp): asyncio.ensure_future(outcome(exp.run, RunError))
                       for exp in expected}
            for run in racing:
                while run.status == "pending" and not run.done:
                    await asyncio.sleep(0.01)
                await run.cancel()

            await asyncio.gather(*awaited.values(), *consumers)
            assert client.runs.in_flight == 0, f"{where}: {client.runs.stats()}"
            server = {exp.run.item_id: await client.queue.get(exp.run.item_id)
                      for exp in expected}

    assert 120 <= len(expected) <= 170, where
    for exp in expected:
        run = exp.run
        result = run.result_nowait()
        label = f"{where}: item {run.item_id} ({exp.kind})"
        assert result is not None, label
        item = server[run.item_id]
        if exp.status is not None:
            assert result.status == exp.status, f"{label}: {result}"
        if any(exp is race for race in race_exps):
            assert result.status in ("canceled", "completed"), f"{label}: {result}"
        check_against_server(exp, result, item, label)
        check_awaited(awaited[id(exp)].result(), result, label)
    for batch in batches:
        ids = set(batch.item_ids)
        for k in range(2):
            counts = drained[f"{batch.batch_id}/{k}"]
            assert set(counts) == ids, f"{where}: {counts}"
            assert set(counts.values()) == {1}, f"{where}: {counts}"
        assert batch.counts.completed == len(batch), where
    for events, exps in stories:
        for exp in exps:
            result: WorkflowResult | None = exp.run.result_nowait()
            check_story(events, exp, result, f"{where}: item {exp.run.item_id}")
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and _ours(t)]
    assert leftover == [], f"{where}: {leftover}"
