"""A seeded chaos test of the execution engine against the double.

Each seed picks a reproducible mix of the double's faults (doubled, late, shuffled or missing
events, sockets cut every few events, slow nodes, progress steps, enqueue answers that arrive
after their items ended or never) and a workload (single submits and sweeps, cancels by every
route the SDK offers, several consumers per run) and checks what a user cares about: every item
ends exactly once, with the value the server computed, the status the server reports, events in
order, no wait that hangs and no task left behind.

A second draw per seed (:class:`Mix`) covers the rest: sockets cut on a timer, a stalled
processor, the queue cleared, pruned, deleted or canceled by destination while runs are in
flight, failed items retried (a new item in the same batch), two users of a multi-user
server side by side, image graphs (sizes and new images checked against the server's
``session.results``), iterate/collect graphs and ``max_concurrency``.

Run more seeds with ``CHAOS_SEEDS=200`` (seeds 0..199) or one with ``CHAOS_SEED=17``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from invokeai_client import (
    AsyncClient,
    ImageRef,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    RunCanceledError,
    RunError,
    RunFailedError,
    RunTimeoutError,
    StatusChanged,
    WorkflowResult,
)
from invokeai_client.runs import BatchRun, RunEvent, WorkflowRun
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.types.queue import SessionQueueItem

from .conftest import ADMIN, USER, Peer
from .helpers import items_ended
from .test_runs import _ours, add_graph, div_graph, image_graph, iterate_graph
from .test_runs_faults import engine

pytestmark = [pytest.mark.anyio, pytest.mark.double]

WAIT = 60.0
"""Bound of every wait: generous, since a hang is a bug, not slowness."""


def _seeds() -> list[int]:
    one = os.environ.get("CHAOS_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get("CHAOS_SEEDS", "8"))))



def add_rest_faults(double: Any, times: int) -> None:
    """The REST catch-up reads answer 503 ``times`` times each."""
    if times:
        for route in ("items_by_ids", "item_summaries_by_ids"):
            double.faults.add(f"/api/v1/queue/*/{route}", status=503, times=times,
                              retry_after=0.05)


def check_awaited(got: Any, result: WorkflowResult, label: str) -> None:
    """What ``await run`` gave agrees with the run's result: the result itself, or the
    run's error with its item and status."""
    if result.status == "completed":
        assert got is result, f"{label}: awaited {got!r}"
    else:
        assert isinstance(got, RunError), f"{label}: {got!r}"
        assert got.item_id == result.item_id, label
        assert got.status == result.status, label

@dataclass
class Chaos:
    """One seed's faults and workload, reproducible from the seed alone."""

    seed: int
    duplicate_events: bool
    event_delay: float
    shuffle_item_events: bool
    silent_events: bool
    drop_sockets_after_events: int | None
    node_delay: float
    node_delays: dict[str, float]
    progress_steps: int
    enqueue_response_delay: float
    lose_enqueue_responses: int
    lost_enqueue_status: int | None
    singles: int
    sweeps: list[int]
    cancels: list[str]
    mid_run_cancel: bool
    late_readers: bool
    rest_faults: int
    left_on_close: int
    rng: random.Random = field(repr=False)

    @classmethod
    def from_seed(cls, seed: int) -> Chaos:
        rng = random.Random(seed)
        silent = rng.random() < 0.15
        return cls(
            seed=seed,
            duplicate_events=rng.random() < 0.5,
            event_delay=rng.choice([0.0, 0.0, 0.005, 0.03]),
            shuffle_item_events=rng.random() < 0.35,
            silent_events=silent,
            drop_sockets_after_events=rng.choice([None, None, 5, 11, 23, 41]),
            node_delay=rng.choice([0.0, 0.001, 0.004]),
            node_delays=rng.choice([{}, {"add": 0.01}, {"integer": 0.003}]),
            progress_steps=rng.choice([0, 0, 2, 4]),
            enqueue_response_delay=rng.choice([0.0, 0.0, 0.05, 0.2]),
            lose_enqueue_responses=rng.choice([0, 0, 1, 2]),
            lost_enqueue_status=rng.choice([502, 500, None]),
            singles=rng.randint(3, 8),
            sweeps=[rng.randint(1, 6) for _ in range(rng.randint(1, 3))],
            cancels=rng.sample(
                ["run.cancel", "task", "timeout", "batch.cancel", "batch-task"],
                rng.randint(0, 3),
            ),
            mid_run_cancel=rng.random() < 0.4,
            late_readers=rng.random() < 0.5,
            rest_faults=rng.choice([0, 0, 1, 3]),
            left_on_close=rng.choice([0, 0, 1, 3]),
            rng=rng,
        )

    def apply(self, double: Any) -> None:
        faults = double.queue.faults
        add_rest_faults(double, self.rest_faults)
        faults.duplicate_events = self.duplicate_events
        faults.event_delay = self.event_delay
        faults.shuffle_item_events = self.shuffle_item_events
        faults.seed = self.seed
        faults.silent_events = self.silent_events
        faults.drop_sockets_after_events = self.drop_sockets_after_events
        faults.node_delay = self.node_delay
        faults.node_delays = dict(self.node_delays)
        faults.progress_steps = self.progress_steps
        faults.enqueue_response_delay = self.enqueue_response_delay
        faults.lose_enqueue_responses = self.lose_enqueue_responses
        faults.lost_enqueue_status = self.lost_enqueue_status

    def __str__(self) -> str:
        shown = {k: v for k, v in vars(self).items() if k not in ("seed", "rng")}
        return f"seed={self.seed} (CHAOS_SEED={self.seed}) {shown}"


@dataclass
class Expected:
    """What one run must end as: ``status`` None means whatever the server says."""

    run: WorkflowRun
    value: int | None
    status: str | None = "completed"
    node: str = "sum"
    nodes: frozenset[str] = frozenset({"a", "b", "sum"})
    iterated: frozenset[str] = frozenset()
    kind: str = "add"
    extra: Any = None


# -- checks --------------------------------------------------------------------------------


def check_story(events: list[RunEvent], expected: Expected, result: WorkflowResult | None,
                where: str) -> None:
    """One run's events: in order, nothing twice, ending with exactly one terminal status
    that agrees with the result."""
    run = expected.run
    mine = [e for e in events if e.item_id == run.item_id]
    assert all(e.batch_id == run.batch_id for e in mine), where
    terminal = [i for i, e in enumerate(mine) if isinstance(e, StatusChanged) and e.terminal]
    assert len(terminal) == 1, f"{where}: terminal statuses {mine}"
    assert terminal[0] == len(mine) - 1, f"{where}: events after the terminal status {mine}"
    final = mine[-1]
    assert isinstance(final, StatusChanged)
    if result is not None:
        assert final.status == result.status, f"{where}: {final} vs {result.status}"
    iterated = expected.iterated
    started: set[tuple[str, str | None]] = set()
    started_nodes: set[str] = set()
    completed: dict[str, Any] = {}
    done: set[tuple[str, str | None]] = set()
    told: dict[str, list[Any]] = defaultdict(list)  # iterated nodes: what each event said
    seen_status: list[str] = []
    for index, event in enumerate(mine):
        if isinstance(event, StatusChanged):
            assert event.status not in seen_status, f"{where}: status twice {mine}"
            if event.status == "in_progress":
                assert not started, f"{where}: in_progress late {mine}"
                assert not completed, f"{where}: in_progress late {mine}"
            seen_status.append(event.status)
        elif isinstance(event, NodeStarted):
            key = (event.node_id, event.prepared_id if event.node_id in iterated else None)
            assert key not in started, f"{where}: {event.node_id} started twice {mine}"
            started.add(key)
            started_nodes.add(event.node_id)
        elif isinstance(event, NodeProgress):
            assert event.node_id in started_nodes, f"{where}: progress before start {mine}"
            assert event.node_id not in completed, f"{where}: progress after complete {mine}"
        elif isinstance(event, NodeCompleted):
            assert event.node_id in started_nodes, f"{where}: completed before started {mine}"
            key = (event.node_id, event.prepared_id if event.node_id in iterated else None)
            assert key not in done, f"{where}: completed twice {mine}"
            done.add(key)
            if event.node_id in iterated:
                told[event.node_id].append(event)
            else:
                completed[event.node_id] = event.output
        elif isinstance(event, NodeFailed):
            assert index == len(mine) - 2, f"{where}: NodeFailed not right before the end {mine}"
    if result is not None and result.status in ("completed", "failed"):
        assert seen_status[0] == "in_progress", f"{where}: {mine}"
    if result is not None and result.status == "completed":
        plain = {k: v for k, v in result.outputs.items() if k not in iterated}
        assert completed == plain, f"{where}: events {completed} vs {result}"
        assert set(completed) | set(told) == set(expected.nodes), f"{where}: {mine}"
        for node_id, node_events in told.items():
            # Per iteration from the socket (a single value each), or the whole list at once
            # from REST: never a value the result does not have.
            want = list(result.outputs[node_id])
            for event in node_events:
                if event.prepared_id is None:
                    assert event.output == result.outputs[node_id], f"{where}: {mine}"
                else:
                    assert event.output in want, f"{where}: {event} not in {want}"
                    want.remove(event.output)
    if result is not None and result.status == "failed":
        assert isinstance(mine[-2], NodeFailed), f"{where}: {mine}"


async def read(run: WorkflowRun | BatchRun, out: list[RunEvent], delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    async for event in run.events():
        out.append(event)


async def outcome(
    run: WorkflowRun, expected: type[Exception] | tuple[type[Exception], ...] = (
        RunCanceledError, RunFailedError)
) -> WorkflowResult | BaseException:
    """The run's result, or the error it ended with (any other error is a bug)."""
    try:
        return await run
    except expected as exc:
        return exc


# -- the test ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", _seeds())
async def test_chaos(double: Peer, seed: int) -> None:
    chaos = Chaos.from_seed(seed)
    where = str(chaos)
    queue = engine(double)
    chaos.apply(double.double)
    rng = chaos.rng
    base = 1000 * (seed + 1)
    before = set(asyncio.all_tasks())
    expected: list[Expected] = []
    batches: list[tuple[BatchRun, str | None]] = []
    drained: dict[str, Counter[int]] = defaultdict(Counter)
    stories: list[tuple[list[RunEvent], list[Expected]]] = []
    consumers: list[asyncio.Task[Any]] = []

    def delay() -> float:
        return rng.choice([0.0, 0.0, 0.01, 0.05]) if chaos.late_readers else 0.0

    def watch(run: WorkflowRun, exp: Expected) -> None:
        events: list[RunEvent] = []
        stories.append((events, [exp]))
        consumers.append(asyncio.ensure_future(read(run, events, delay())))

    async def as_completed(batch: BatchRun, key: str) -> list[WorkflowResult]:
        got = []
        async for result in batch.as_completed():
            drained[key][result.item_id] += 1
            got.append(result)
        return got

    async with double.client() as client:
        client.runs.quiet_after = 0.5  # silent events: find out over REST soon, not in 30 s
        with anyio.fail_after(WAIT):
            # Phase 1: the processor holds, so each cancel route meets a pending item.
            queue.paused = True
            for how in chaos.cancels:
                if how.startswith("batch"):
                    size = rng.randint(1, 3)
                    data = [[{"node_path": "a", "field_name": "value",
                              "items": list(range(size))}]]
                    batch = await client.runs.submit_batch(add_graph(0, -1), data=data)
                    for run in batch.runs:
                        expected.append(Expected(run, None, "canceled"))
                    if how == "batch.cancel":
                        await batch.cancel()
                    else:
                        waiter = asyncio.ensure_future(batch.results())
                        await asyncio.sleep(0.01)
                        waiter.cancel()
                        with pytest.raises(asyncio.CancelledError):
                            await waiter
                    batches.append((batch, None))
                    continue
                run = await client.runs.submit(add_graph(-1, -1))
                exp = Expected(run, None, "canceled")
                expected.append(exp)
                watch(run, exp)
                if how == "run.cancel":
                    assert await run.cancel() == "canceled", where
                elif how == "timeout":
                    with pytest.raises(RunTimeoutError) as caught:
                        await run.result(timeout=0.01)
                    assert caught.value.canceled, where
                else:
                    waiter = asyncio.ensure_future(run.result())
                    await asyncio.sleep(0.01)
                    waiter.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await waiter
            queue.paused = False
            queue.wake()

            # Phase 2: singles (concurrent) and sweeps while the processor runs.
            pairs = [(i, base + i) for i in range(chaos.singles)]
            singles = await asyncio.gather(*(client.runs.submit(add_graph(a, b))
                                             for a, b in pairs))
            for (a, b), run in zip(pairs, singles, strict=True):
                exp = Expected(run, a + b)
                expected.append(exp)
                if rng.random() < 0.6:
                    watch(run, exp)
            failing = await client.runs.submit(div_graph(seed, 0))
            fail_exp = Expected(failing, None, "failed", node="d", nodes=frozenset({"d"}))
            expected.append(fail_exp)
            watch(failing, fail_exp)
            for n, size in enumerate(chaos.sweeps):
                offset = base * 10 + n * 100
                runs = rng.choice([1, 1, 2])
                data = [[{"node_path": "a", "field_name": "value",
                          "items": list(range(size))}]]
                batch = await client.runs.submit_batch(add_graph(0, offset), data=data,
                                                       runs=runs)
                assert len(batch.runs) == size * runs, where
                batch_exp = []
                for run in batch.runs:
                    value = batch.field_values(run.index)["a.value"] + offset
                    batch_exp.append(Expected(run, value))
                expected.extend(batch_exp)
                batches.append((batch, "sweep"))
                events: list[RunEvent] = []
                stories.append((events, batch_exp))
                consumers.append(asyncio.ensure_future(read(batch, events, delay())))
            mid: Expected | None = None
            if chaos.mid_run_cancel:
                run = await client.runs.submit(add_graph(7, 7))
                mid = Expected(run, 14, None)
                expected.append(mid)
                watch(run, mid)

            # Consumers: await each run (some twice), drain each batch twice.
            awaited = {
                id(exp): asyncio.ensure_future(outcome(exp.run))
                for exp in expected if exp.status != "canceled" or rng.random() < 0.5
            }
            seconds = {
                id(exp): asyncio.ensure_future(outcome(exp.run))
                for exp in expected if rng.random() < 0.3
            }
            draining = [
                asyncio.ensure_future(as_completed(batch, f"{batch.batch_id}/{k}"))
                for batch, _ in batches for k in range(2)
            ]
            if mid is not None:
                while mid.run.status == "pending" and not mid.run.done:
                    await asyncio.sleep(0.005)
                await mid.run.cancel()

            await asyncio.gather(*awaited.values(), *seconds.values(), *draining, *consumers)
            server = {item.item_id: item for item in await client.queue.get_many(
                [exp.run.item_id for exp in expected])}

            # Runs still pending when the client closes end canceled (detached: left alone).
            queue.paused = True
            left = [await client.runs.submit(add_graph(i, -5), detach=i == 1)
                    for i in range(chaos.left_on_close)]
            left_waits = [asyncio.ensure_future(outcome(run, RunError)) for run in left]
    with anyio.fail_after(WAIT):
        for run, waiting in zip(left, left_waits, strict=True):
            got = await waiting
            assert isinstance(got, BaseException), f"{where}: {got!r}"
            result = run.result_nowait()
            assert result is not None, where
            assert result.status == ("detached" if run.detached else "canceled"), where
        async with double.client() as watcher:
            for item in await watcher.queue.get_many([run.item_id for run in left]):
                want = "pending" if item.item_id in {r.item_id for r in left if r.detached} \
                    else "canceled"
                assert item.status == want, f"{where}: {item.item_id} {item.status}"

    # Every item ended once, as the server says, with the server's value.
    for exp in expected:
        run = exp.run
        result = run.result_nowait()
        label = f"{where}: item {run.item_id}"
        assert result is not None, label
        assert result.status == server[run.item_id].status, f"{label}: {result} vs server"
        if exp.status is not None:
            assert result.status == exp.status, f"{label}: {result}"
        if result.status == "completed":
            assert result[exp.node] == exp.value, f"{label}: {result}"
        if result.status == "failed":
            assert result.error_node_id == exp.node, f"{label}: {result}"
            assert result.error_type == "ZeroDivisionError", f"{label}: {result}"
        for task in (awaited.get(id(exp)), seconds.get(id(exp))):
            if task is None:
                continue
            got = task.result()
            if result.status == "completed":
                assert got is result, f"{label}: awaited {got!r}"
            else:
                assert isinstance(got, RunCanceledError | RunFailedError), f"{label}: {got!r}"
                assert got.item_id == run.item_id, label
                assert got.status == result.status, label
    # as_completed yields each item of its batch exactly once, each consumer.
    for batch, _ in batches:
        ids = set(batch.item_ids)
        for k in range(2):
            counts = drained[f"{batch.batch_id}/{k}"]
            assert set(counts) == ids, f"{where}: {counts}"
            assert set(counts.values()) == {1}, f"{where}: {counts}"
    # Each reader's story is in order and agrees with the result.
    for events, exps in stories:
        for exp in exps:
            check_story(events, exp, exp.run.result_nowait(), f"{where}: item {exp.run.item_id}")
    # Leaving the client left nothing running.
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and _ours(t)]
    assert leftover == [], f"{where}: {leftover}"


# -- queue operations, retries, users, images, iterate/collect, max_concurrency -------------

DESTINATION = "chaos-destination"
OPS = ("clear", "prune", "cancel_destination", "delete_destination", "delete",
       "cancel_all_except_current")
DELETING = frozenset({"clear", "prune", "delete_destination", "delete"})


@dataclass
class Mix:
    """A second seeded draw, for what :class:`Chaos` leaves out: time-based socket cuts, a
    stalled processor, queue clear / prune / delete / cancel by destination while runs are in
    flight, retries of failed items, two users side by side, image and iterate/collect
    graphs, and ``max_concurrency``."""

    seed: int
    multiuser: bool
    max_concurrency: int | None
    drop_sockets_every: float | None
    stall: float
    duplicate_events: bool
    event_delay: float
    node_delay: float
    progress_steps: int
    silent_events: bool
    shuffle_item_events: bool
    enqueue_response_delay: float
    rest_faults: int
    singles: int
    sweep: int
    images: list[tuple[int, int]]
    iterates: list[int]
    retry: str | None
    op: str | None
    op_by: int
    op_delay: float
    op_after_retry: bool
    abandon: list[float]
    rng: random.Random = field(repr=False)

    @classmethod
    def from_seed(cls, seed: int) -> Mix:
        rng = random.Random(f"mix-{seed}")
        return cls(
            seed=seed,
            multiuser=rng.random() < 0.35,
            max_concurrency=rng.choice([None, None, 1, 3, 8]),
            drop_sockets_every=rng.choice([None, None, 0.03, 0.1, 0.25]),
            stall=rng.choice([0.0, 0.0, 0.05, 0.3]),
            duplicate_events=rng.random() < 0.4,
            event_delay=rng.choice([0.0, 0.0, 0.01]),
            node_delay=rng.choice([0.0, 0.002, 0.005]),
            progress_steps=rng.choice([0, 0, 3]),
            silent_events=rng.random() < 0.1,
            shuffle_item_events=rng.random() < 0.25,
            enqueue_response_delay=rng.choice([0.0, 0.0, 0.0, 0.05, 0.2]),
            rest_faults=rng.choice([0, 0, 0, 2]),
            singles=rng.randint(2, 6),
            sweep=rng.randint(1, 5),
            images=[(rng.randint(8, 40), rng.randint(8, 40)) for _ in range(rng.randint(0, 2))],
            iterates=[rng.randint(1, 4) for _ in range(rng.randint(0, 2))],
            retry=rng.choice([None, "single", "batch"]),
            op=rng.choice([None, *OPS]),
            op_by=rng.randint(0, 1),
            op_delay=rng.choice([0.0, 0.01, 0.05, 0.2]),
            op_after_retry=rng.random() < 0.5,
            abandon=[rng.choice([0.0, 0.001, 0.01, 0.05]) for _ in range(rng.choice([0, 0, 1, 3]))],
            rng=rng,
        )

    def apply(self, double: InvokeAIDouble) -> None:
        faults = double.queue.faults
        faults.drop_sockets_every = self.drop_sockets_every
        faults.duplicate_events = self.duplicate_events
        faults.event_delay = self.event_delay
        faults.node_delay = self.node_delay
        faults.progress_steps = self.progress_steps
        faults.silent_events = self.silent_events
        faults.shuffle_item_events = self.shuffle_item_events
        faults.seed = self.seed
        faults.enqueue_response_delay = self.enqueue_response_delay
        faults.stall_processor = bool(self.stall)
        add_rest_faults(double, self.rest_faults)

    def __str__(self) -> str:
        shown = {k: v for k, v in vars(self).items() if k not in ("seed", "rng")}
        return f"seed={self.seed} (CHAOS_SEED={self.seed}) {shown}"


def _server_outputs(item: SessionQueueItem) -> dict[str, list[dict[str, Any]]]:
    """Each graph node's raw outputs as the server recorded them (``session.results``)."""
    session = item.session
    results = session.get("results") or {}
    mapping = session.get("source_prepared_mapping") or {}
    return {source: [results[p] for p in prepared if p in results]
            for source, prepared in mapping.items()}


def check_against_server(exp: Expected, result: WorkflowResult, item: SessionQueueItem,
                         where: str) -> None:
    """A completed or failed result says what the server's queue item says."""
    assert result.status == item.status, f"{where}: {result} vs server {item.status}"
    assert result.batch_id == item.batch_id, where
    if result.status == "failed":
        assert result.error_node_id == exp.node, f"{where}: {result}"
        assert result.error_type == "ZeroDivisionError" == item.error_type, f"{where}: {result}"
        return
    if result.status != "completed":
        return
    server = _server_outputs(item)
    assert set(result.outputs) == set(exp.nodes) == set(server), f"{where}: {result}"
    if exp.kind == "add":
        assert result[exp.node] == exp.value == server[exp.node][0]["value"], where
        for node_id in ("a", "b"):
            assert result[node_id] == server[node_id][0]["value"], where
        assert result.images == (), where
    elif exp.kind == "div":
        assert result["d"] == exp.value == server["d"][0]["value"], f"{where}: {result}"
    elif exp.kind == "image":
        width, height = exp.extra
        for node_id in ("blank", "blur", "save"):
            ref, raw = result[node_id], server[node_id][0]
            assert isinstance(ref, ImageRef), f"{where}: {result}"
            assert ref.image_name == raw["image"]["image_name"], f"{where}: {node_id}"
            assert (ref.width, ref.height) == (raw["width"], raw["height"]) == (width, height), \
                f"{where}: {node_id} {ref}"
        assert result.images == (result["save"],), f"{where}: only the saved image is new"
        assert result.image is not None, where
        assert result.image.client is not None, where
        assert result["n"] == 5, where
    elif exp.kind == "iterate":
        want = [100 + i for i in range(exp.extra)]
        assert result["col"] == want == server["col"][0]["collection"], f"{where}: {result}"
        assert result["plus"] == want, f"{where}: {result}"
        assert sorted(out["value"] for out in server["plus"]) == want, where
        assert [step["item"] for step in result["it"]] == list(range(exp.extra)), where
        assert result["r"] == list(range(exp.extra)), where


def iterate_expected(run: WorkflowRun, stop: int) -> Expected:
    return Expected(run, None, None, node="col", nodes=frozenset({"r", "it", "plus", "col"}),
                    iterated=frozenset({"it", "plus"}), kind="iterate", extra=stop)


def image_expected(run: WorkflowRun, size: tuple[int, int]) -> Expected:
    return Expected(run, None, None, node="save",
                    nodes=frozenset({"blank", "blur", "save", "n"}), kind="image", extra=size)


def div_expected(run: WorkflowRun, a: int, b: int) -> Expected:
    return Expected(run, a // b if b else None, None, node="d", nodes=frozenset({"d"}),
                    kind="div")


@dataclass
class Load:
    """One client's share of the workload."""

    client: AsyncClient
    expected: list[Expected] = field(default_factory=list)
    batches: list[BatchRun] = field(default_factory=list)
    retry_target: Expected | None = None
    retried: list[tuple[int, Expected]] = field(default_factory=list)


async def _submit_load(client: AsyncClient, mix: Mix, k: int) -> Load:
    rng = mix.rng
    load = Load(client)
    base = 100_000 * (mix.seed + 1) + 10_000 * k

    def where_to() -> str | None:
        return DESTINATION if rng.random() < 0.5 else None

    async def single(graph: dict[str, Any], make: Any) -> None:
        run = await client.runs.submit(graph, destination=where_to())
        load.expected.append(make(run))

    singles = [single(add_graph(i, base + i), lambda r, v=2 * i + base: Expected(r, v, None))
               for i in range(mix.singles)]
    for size in mix.images:
        graph = image_graph(*size)
        singles.append(single(graph, lambda r, s=size: image_expected(r, s)))
    for stop in mix.iterates:
        singles.append(single(iterate_graph(stop), lambda r, s=stop: iterate_expected(r, s)))
    singles.append(single(div_graph(base, 0), lambda r: div_expected(r, base, 0)))
    rng.shuffle(singles)

    async def sweep() -> None:
        data = [[{"node_path": "a", "field_name": "value", "items": list(range(mix.sweep))}]]
        batch = await client.runs.submit_batch(add_graph(0, base + 500), data=data,
                                               destination=where_to())
        load.batches.append(batch)
        for run in batch.runs:
            value = batch.field_values(run.index)["a.value"] + base + 500
            load.expected.append(Expected(run, value, None))

    async def div_sweep() -> None:
        data = [[{"node_path": "d", "field_name": "b", "items": [2, 0, 3]}]]
        batch = await client.runs.submit_batch(div_graph(base, 1), data=data,
                                               destination=where_to())
        load.batches.append(batch)
        for run in batch.runs:
            b = batch.field_values(run.index)["d.b"]
            exp = div_expected(run, base, b)
            load.expected.append(exp)
            if b == 0 and mix.retry == "batch":
                load.retry_target = exp

    await asyncio.gather(*singles, sweep(), div_sweep())
    if mix.retry == "single":
        load.retry_target = next(e for e in load.expected
                                 if e.kind == "div" and e.run.batch.expected == 1)
    return load


async def _retry(load: Load, where: str) -> None:
    """Retry the load's failed item (if it failed and still exists); follow the new item."""
    target = load.retry_target
    if target is None:
        return
    client = load.client
    got = await outcome(target.run, RunError)
    if not isinstance(got, RunFailedError):
        return  # deleted or canceled by the queue operation: nothing to retry
    original = target.run.item_id
    answer = await client.queue.retry([original])
    if answer.retried_item_ids != [original]:
        return
    known = {e.run.item_id for e in load.expected}
    candidates = [i for i in await client.queue.item_ids() if i not in known]
    new = [item for item in await client.queue.get_many(candidates)
           if item.retried_from_item_id == original]
    assert len(new) == 1, f"{where}: retry of {original} made {new}"
    assert new[0].batch_id == target.run.batch_id, where
    run = await client.runs.attach(new[0].item_id, detach=False)
    load.retried.append((original, Expected(run, None, None, node="d",
                                            nodes=frozenset({"d"}), kind="div")))


async def _queue_op(mix: Mix, loads: list[Load]) -> None:
    if mix.op is None:
        return
    if mix.op_delay:
        await asyncio.sleep(mix.op_delay)
    load = loads[mix.op_by % len(loads)]
    queue = load.client.queue
    if mix.op == "clear":
        await queue.clear()
    elif mix.op == "prune":
        await queue.prune()
    elif mix.op == "cancel_destination":
        await queue.cancel_destination(DESTINATION)
    elif mix.op == "delete_destination":
        await queue.delete_destination(DESTINATION)
    elif mix.op == "cancel_all_except_current":
        await queue.cancel_all_except_current()
    else:
        open_runs = [e.run for e in load.expected if not e.run.done]
        victim = mix.rng.choice(open_runs or [e.run for e in load.expected])
        await queue.delete(victim.item_id)


@pytest.mark.parametrize("seed", _seeds())
async def test_chaos_queue_operations_users_and_outputs(seed: int) -> None:
    mix = Mix.from_seed(seed)
    where = str(mix)
    rng = mix.rng
    before = set(asyncio.all_tasks())
    loop = asyncio.get_running_loop()
    async with InvokeAIDouble(multiuser=mix.multiuser) as double, AsyncExitStack() as stack:
        queue = double.queue
        if mix.multiuser:
            double.add_user(*ADMIN, is_admin=True)
            double.add_user(*USER)
            logins = [{"email": ADMIN[0], "password": ADMIN[1]},
                      {"email": USER[0], "password": USER[1]}]
        else:
            logins = [{}]
        clients = [
            await stack.enter_async_context(
                AsyncClient(double.url, max_concurrency=mix.max_concurrency, **login))
            for login in logins
        ]
        for client in clients:
            client.runs.quiet_after = 0.5  # silent events: find out over REST soon
            client.runs.poll_interval = 0.2  # sockets cut often: poll REST often meanwhile
        mix.apply(double)

        def unstall() -> None:
            queue.faults.stall_processor = False
            queue.wake()

        stalled = loop.call_later(mix.stall, unstall) if mix.stall else None
        stories: list[tuple[list[RunEvent], list[Expected]]] = []
        consumers: list[asyncio.Future[Any]] = []
        drained: dict[str, Counter[int]] = defaultdict(Counter)

        async def as_completed(batch: BatchRun, key: str) -> None:
            async for result in batch.as_completed():
                drained[key][result.item_id] += 1

        with anyio.fail_after(WAIT):
            # Submits whose caller gives up (waiting for room under max_concurrency, or
            # during the POST): the item must not be left pending or running.
            quitter = clients[-1]
            abandoned = {
                f"abandoned-{seed}-{n}": asyncio.ensure_future(quitter.runs.submit(
                    add_graph(n, -7), batch_id=f"abandoned-{seed}-{n}"))
                for n in range(len(mix.abandon))
            }
            for after, task in zip(mix.abandon, abandoned.values(), strict=True):
                loop.call_later(after, task.cancel)
            loads = list(await asyncio.gather(
                *(_submit_load(client, mix, k) for k, client in enumerate(clients))))
            for n, task in enumerate(abandoned.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    run = await task  # too late to give up: the run goes on as any other
                    loads[-1].expected.append(Expected(run, n - 7, None))
            everything = [exp for load in loads for exp in load.expected]
            for exp in everything:
                if rng.random() < 0.5:
                    events: list[RunEvent] = []
                    stories.append((events, [exp]))
                    late = rng.choice([0.0, 0.0, 0.02, 0.1])
                    consumers.append(asyncio.ensure_future(read(exp.run, events, late)))
            awaited = {id(exp): asyncio.ensure_future(outcome(exp.run, RunError))
                       for exp in everything}
            for load in loads:
                for batch in load.batches:
                    events = []
                    stories.append((events, [e for e in load.expected
                                             if e.run.batch_id == batch.batch_id]))
                    consumers.append(asyncio.ensure_future(read(batch, events, 0)))
                    for k in range(2):
                        consumers.append(asyncio.ensure_future(
                            as_completed(batch, f"{batch.batch_id}/{k}")))
            if not mix.op_after_retry:
                await _queue_op(mix, loads)
            await asyncio.gather(*(_retry(load, where) for load in loads))
            if mix.op_after_retry:
                await _queue_op(mix, loads)
            retried = [(original, exp) for load in loads for original, exp in load.retried]
            for _, exp in retried:
                awaited[id(exp)] = asyncio.ensure_future(outcome(exp.run, RunError))
            await asyncio.gather(*awaited.values(), *consumers)
            if stalled is not None:
                stalled.cancel()
            for client in clients:
                assert client.runs.in_flight == 0, f"{where}: {client.runs.stats()}"
            for batch_id in abandoned:
                # Given up on: canceled once the enqueue lands (in the background), or it
                # ran first; never left waiting in the queue.
                while True:
                    status = await quitter.queue.batch_status(batch_id)
                    if status.pending == status.in_progress == 0:
                        break
                    await asyncio.sleep(0.02)
                assert status.total == status.canceled + status.completed, f"{where}: {status}"
            # The server's word, read by an admin (who sees every user's items unredacted).
            ids = [exp.run.item_id for exp in everything] + [e.run.item_id for _, e in retried]
            server = {item.item_id: item for item in await clients[0].queue.get_many(ids)}

    for exp in [*everything, *(e for _, e in retried)]:
        run = exp.run
        result = run.result_nowait()
        label = f"{where}: item {run.item_id} ({exp.kind})"
        assert result is not None, label
        item = server.get(run.item_id)
        if item is None:
            # Deleted on the server: the run ended as it was last seen, or as lost.
            assert mix.op in DELETING, f"{label}: {result} but the server lost it"
            assert result.status in ("lost", "canceled", "completed", "failed"), label
            if result.status == "completed":
                check_against_server_values(exp, result, label)
        else:
            check_against_server(exp, result, item, label)
        check_awaited(awaited[id(exp)].result(), result, label)
    for original, exp in retried:
        item = server.get(exp.run.item_id)
        if item is not None:
            assert item.retried_from_item_id == original, where
            assert item.status in ("failed", "canceled"), f"{where}: {item.status}"
    for load in loads:
        for batch in load.batches:
            ids_ = set(batch.item_ids)
            assert len(ids_) == len(batch), where
            for k in range(2):
                counts = drained[f"{batch.batch_id}/{k}"]
                assert set(counts) == ids_, f"{where}: {counts} (a retry is not in the batch)"
                assert set(counts.values()) == {1}, f"{where}: {counts}"
            # The batch's live counts agree with its results (lost counts as failed).
            ended = Counter(getattr(run.result_nowait(), "status", None) for run in batch.runs)
            counts_ = batch.counts
            assert (counts_.total, counts_.pending, counts_.in_progress) == (len(batch), 0, 0), \
                f"{where}: {counts_} vs {ended}"
            assert (counts_.completed, counts_.failed, counts_.canceled) == (
                ended["completed"], ended["failed"] + ended["lost"], ended["canceled"]
            ), f"{where}: {counts_} vs {ended}"
    for events, exps in stories:
        for exp in exps:
            check_story(events, exp, exp.run.result_nowait(), f"{where}: item {exp.run.item_id}")
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and _ours(t)]
    assert leftover == [], f"{where}: {leftover}"


def check_against_server_values(exp: Expected, result: WorkflowResult, where: str) -> None:
    """A completed result of an item the server no longer has: the values it must have."""
    assert set(result.outputs) == set(exp.nodes), f"{where}: {result}"
    if exp.kind in ("add", "div"):
        assert result[exp.node] == exp.value, f"{where}: {result}"
    elif exp.kind == "image":
        assert (result["save"].width, result["save"].height) == exp.extra, where
    elif exp.kind == "iterate":
        assert result["col"] == [100 + i for i in range(exp.extra)], where


# -- regressions the chaos found, each staged deterministically ------------------------------


async def _story(run: WorkflowRun) -> list[RunEvent]:
    events: list[RunEvent] = []
    with anyio.fail_after(WAIT):
        await read(run, events, 0)
    return events


async def test_a_failed_runs_terminal_status_carries_the_error_in_its_fields(
    double: Peer,
) -> None:
    # StatusChanged once had a field before error_type that was never filled in; positional
    # construction put the error type there. The fields are passed by name now.
    async with double.client() as client:
        run = await client.runs.submit(div_graph(1, 0))
        events = await _story(run)
    final = events[-1]
    assert isinstance(final, StatusChanged)
    assert final.status == "failed"
    assert final.error_type == "ZeroDivisionError"
    assert final.error_message == "division by zero"


async def test_a_reader_of_a_run_that_ended_but_waits_for_rest_gets_one_terminal_status(
    double: Peer,
) -> None:
    # A failed item settles from REST. A reader that came in between (its events all arrived
    # before the enqueue answer) was replayed the failed status as if it were news, then got
    # the terminal status again when the run settled.
    queue = engine(double)
    queue.faults.enqueue_response_until = items_ended(queue)  # the whole item runs first
    queue.faults.enqueue_response_delay = 0.3  # and its events reach the client
    async with double.client() as client:
        run = await client.runs.submit(div_graph(1, 0))
        assert run.status == "failed"
        assert not run.done  # waiting for the REST read: the case under test
        events = await _story(run)
    assert [e.status for e in events if isinstance(e, StatusChanged)] == ["in_progress", "failed"]
    check_story(events, Expected(run, None, "failed", node="d", nodes=frozenset({"d"})),
                run.result_nowait(), "replay of an unsettled failed run")


async def test_events_that_arrive_shuffled_are_told_in_order(double: Peer) -> None:
    # With an item's events out of order, a node's complete (or progress) came before its
    # start, the start was told after the completion, and in_progress after the nodes.
    queue = engine(double)
    queue.faults.shuffle_item_events = True
    queue.faults.progress_steps = 2
    async with double.client() as client:
        queue.paused = True
        runs = []
        for seed in range(6):
            queue.faults.seed = seed
            run = await client.runs.submit(add_graph(seed, 10))
            runs.append((run, asyncio.ensure_future(_story(run))))
        queue.paused = False
        queue.wake()
        for seed, (run, story) in enumerate(runs):
            with anyio.fail_after(WAIT):
                result = await run
            assert result["sum"] == seed + 10
            check_story(await story, Expected(run, seed + 10), result, f"shuffle seed {seed}")


async def test_a_node_started_on_the_socket_and_completed_over_rest_is_started_once(
    double: Peer,
) -> None:
    # The socket told `sum` started, then went silent; the REST catch-up told every node
    # the socket had not completed as started + completed, so `sum` started twice.
    queue = engine(double)
    queue.faults.node_delays = {"add": 0.3}
    async with double.client() as client:
        client.runs.quiet_after = 0.2
        run = await client.runs.submit(add_graph(2, 3))
        events: list[RunEvent] = []
        with anyio.fail_after(WAIT):
            async for event in run.events():
                events.append(event)
                if isinstance(event, NodeStarted) and event.node_id == "sum":
                    queue.faults.silent_events = True
        result = run.result_nowait()
    assert result is not None
    assert result["sum"] == 5
    assert client.runs.rest_checks > 0
    check_story(events, Expected(run, 5), result, "started on the socket, done over REST")


async def test_a_late_reader_of_a_run_canceled_while_pending_hears_it_never_ran(
    double: Peer,
) -> None:
    # A reader that came after the end was told "in_progress" before "canceled" although
    # the item never left the queue (a reader from the start heard only "canceled").
    queue = engine(double)
    async with double.client() as client:
        queue.paused = True
        waiting = await client.runs.submit(add_graph(1, 2))
        early = asyncio.ensure_future(_story(waiting))
        await waiting.cancel()
        with anyio.fail_after(WAIT):
            told_early = await early
        assert waiting.status == "canceled"
        told_late = await _story(waiting)
        queue.paused = False
        queue.wake()
        ran = await client.runs.submit(add_graph(3, 4))
        with anyio.fail_after(WAIT):
            await ran
        told_after_running = await _story(ran)
    statuses = [[e.status for e in told if isinstance(e, StatusChanged)]
                for told in (told_early, told_late, told_after_running)]
    assert statuses == [["canceled"], ["canceled"], ["in_progress", "completed"]]


async def test_runs_that_end_lost_or_detached_end_with_a_terminal_status(double: Peer) -> None:
    # A run whose item was cleared from the queue ended with StatusChanged("lost") whose
    # `terminal` was False (only the server's three final statuses counted), so a reader
    # that stops at the terminal status read on forever; "detached" the same.
    queue = engine(double)
    async with double.client() as client:
        queue.paused = True
        cleared = await client.runs.submit(add_graph(1, 2))
        told_cleared = asyncio.ensure_future(_story(cleared))
        await client.queue.clear()
        with anyio.fail_after(WAIT):
            await told_cleared
        left = await client.runs.submit(add_graph(3, 4), detach=True)
        told_left = asyncio.ensure_future(_story(left))
    with anyio.fail_after(WAIT):
        await told_left
    ends = [[(e.status, e.terminal) for e in story.result() if isinstance(e, StatusChanged)]
            for story in (told_cleared, told_left)]
    assert ends == [[("lost", True)], [("detached", True)]]


async def test_a_failure_told_on_the_socket_survives_a_prune_before_the_rest_read(
    double: Peer,
) -> None:
    # A failed item is read over REST before it settles; pruned first, it ended as "lost",
    # although the socket had told its failure, node and error.
    assert double.double is not None
    for route in ("items_by_ids", "item_summaries_by_ids", "i/*"):
        double.double.faults.add(f"/api/v1/queue/*/{route}", delay=0.5, times=None)
    async with double.client() as client:
        run = await client.runs.submit(div_graph(1, 0))
        with anyio.fail_after(WAIT):
            while run.status != "failed":  # the socket's word; the REST read is under way
                await asyncio.sleep(0.01)
        assert not run.done
        await client.queue.prune()
        with pytest.raises(RunFailedError) as caught, anyio.fail_after(WAIT):
            await run
    assert caught.value.status == "failed"
    assert caught.value.node_id == "d"
    assert caught.value.error_type == "ZeroDivisionError"
