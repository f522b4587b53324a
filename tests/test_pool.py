"""ServerPool: one sweep over several servers, exactly one result per variation, failover."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from invokeai_client import (
    AsyncClient,
    BoardNotFoundError,
    InvokeAIError,
    JobBusyError,
    ValidationError,
)
from invokeai_client.pool import Manifest, Policy, PoolResult, ServerAssigned, ServerPool
from invokeai_client.runs import StatusChanged
from invokeai_client.testing import InvokeAIDouble
from invokeai_client.workflows import examples

from .conftest import wait_until
from .helpers import node_of
from .test_workflows_sync import CLIP, MAIN, SDXL, T5, VAE, model_workflow

pytestmark = pytest.mark.anyio

FAST = {"probe_interval": 0.1, "probe_timeout": 10.0, "down_after": 1.0}
"""Quick failover for the tests: a server that refuses is down after 1 s; one that is only
slow (a loaded machine stalls this process for seconds) must still count as answering."""


@contextlib.asynccontextmanager
async def doubles(*delays: float) -> AsyncIterator[list[InvokeAIDouble]]:
    """Doubles whose nodes take ``delays`` seconds each (servers of different speeds)."""
    async with contextlib.AsyncExitStack() as stack:
        found = []
        for delay in delays:
            double = await stack.enter_async_context(InvokeAIDouble())
            double.queue.faults.node_delay = delay
            found.append(double)
        yield found


def check_products(results: list[PoolResult], math: str, a: str, b: str) -> None:
    for r in results:
        assert r.ok, r.result.error_message
        assert r.result.field_values == r.inputs
        assert r.result[math] == r.inputs[a] * r.inputs[b]


async def completed_items(double: InvokeAIDouble) -> list[Any]:
    async with AsyncClient(double.url) as client:
        ids = await client.queue.item_ids()
        return [i for i in await client.queue.get_summaries(ids) if i.status == "completed"]


async def test_a_sweep_over_three_servers_gives_each_variation_one_result() -> None:
    async with doubles(0.0, 0.002, 0.01) as servers:
        urls = [d.url for d in servers]
        async with ServerPool(urls, **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            math = node_of(wf, "integer_math")
            a, b = wf.input("A").key, wf.input("B").key
            job = await pool.submit_batch(wf, {"A": range(30), "B": range(10)})
            streamed = [r async for r in job.as_completed()]
            results = await job
            split = job.per_server()
            progress = job.progress()
        assert sorted(r.index for r in streamed) == list(range(300))
        assert [r.index for r in results] == list(range(300))
        check_products(results, math, a, b)
        # Inputs are named as the sweep named them (and readable by node_id.field_name).
        assert results[13].inputs == {"A": 1, "B": 3}
        assert results[13].inputs[a] == 1
        assert sum(split.values()) == 300
        assert all(n > 0 for n in split.values()), split
        assert progress.counts["completed"] == 300
        # Exactly one item per variation was made and completed on the servers.
        made = [i for d in servers for i in await completed_items(d)]
        assert len(made) == 300
        assert sum(d.count("POST", "/api/v1/queue/*/enqueue_batch") for d in servers) < 300


async def test_no_server_queue_is_deeper_than_the_depth_and_limits_hold() -> None:
    """A sweep larger than each server's queue limit completes: the pool never sends more
    than the queue's room, and what a server cuts goes elsewhere (nothing silently lost)."""
    async with doubles(0.001, 0.001) as servers:
        for d in servers:
            d.queue.max_queue_size = 7
        policy = Policy(lead_time=100.0, max_lead=50)  # asks for deep queues: limits must hold
        async with ServerPool([d.url for d in servers], policy=policy, **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            math = node_of(wf, "integer_math")
            job = await pool.submit_batch(wf, {"A": range(40)}, runs=2)
            # A guard: this wait hung once in ~25 loaded runs (not reproduced since).
            with anyio.fail_after(300):
                results = await job
        assert len(results) == 80
        assert all(r.ok for r in results)
        assert [r.result[math] for r in results] == [a * 7 for a in range(40)] * 2
        made = [i for d in servers for i in await completed_items(d)]
        assert len(made) == 80


async def test_a_server_that_stops_answering_is_replaced_and_cleaned_up_when_back() -> None:
    async with doubles(0.01, 0.01) as (steady, flaky):
        async with ServerPool([steady.url, flaky.url], **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            job = await pool.submit_batch(wf, {"A": range(60)})
            await wait_until(lambda: job.per_server()[flaky.url] >= 5)
            # The flaky server freezes: nothing answers, nothing runs.
            flaky.queue.paused = True
            flaky.faults.add("*", drop_connection=True, times=None)
            await flaky.drop_sockets()
            await wait_until(lambda: pool.states()[flaky.url].startswith("down"))
            # ... and comes back with the items it held still queued.
            await wait_until(lambda: job.progress().counts.get("completed", 0) >= 50)
            flaky.faults.clear()
            flaky.queue.paused = False
            flaky.queue.wake()
            results = await job
            await wait_until(lambda: pool.states()[flaky.url] == "up")
            await wait_until(lambda: not pool.members[1].abandoned)
        assert [r.index for r in results] == list(range(60))
        assert all(r.ok for r in results)
        moved = [r for r in results if r.attempts]
        assert moved, "the frozen server held some variations"
        assert all(r.attempts[0].server == flaky.url for r in moved)
        # Every variation completed exactly once on the servers, plus the duplicates the
        # pool reported (items that ran on the frozen server before it was given up on).
        items = [i for d in (steady, flaky) for i in await completed_items(d)]
        made = Counter(tuple(fv.value for fv in i.field_values or ()) for i in items)
        assert len(made) == 60
        ran_twice = [d for d in job.duplicates if d["status"] == "completed"]
        assert sum(made.values()) - 60 == len(ran_twice)
        assert all(d["server"] == flaky.url for d in job.duplicates)


@pytest.mark.parametrize("explicit", [False, True], ids=["from-workflow", "set-by-user"])
async def test_servers_without_the_models_are_left_out_with_the_reason(explicit: bool) -> None:
    """A model the workflow names, or one the user set (with one server's key), runs on
    every server that has it under its own key; the others are left out, not fed."""
    async with doubles(0.0, 0.0, 0.0) as (with_models, without, other_keys):
        for model in (MAIN, T5, CLIP, VAE, SDXL):
            with_models.add_model(model["name"], base=model["base"], type=model["type"],
                                  key=model["key"], hash=model["hash"])
            # Same models under other keys (installed separately): found by hash.
            other_keys.add_model(model["name"], base=model["base"], type=model["type"],
                                 key="other-" + model["key"], hash=model["hash"])
        urls = [with_models.url, without.url, other_keys.url]
        async with ServerPool(urls, **FAST) as pool:
            wf = await pool.load(model_workflow())
            if explicit:  # the config as server `with_models` describes it (its key)
                async with AsyncClient(with_models.url) as client:
                    sdxl = await client.models.get(SDXL["key"])
                wf.set(f"{node_of(wf, 'sdxl_model_loader')}.model", sdxl)
            job = await pool.submit_batch(wf, runs=12)
            results = await job
        assert len(results) == 12
        assert {r.server for r in results} <= {with_models.url, other_keys.url}
        assert set(job.excluded) == {without.url}
        assert "flux1-schnell" in job.excluded[without.url]
        assert "juggernaut" in job.excluded[without.url]  # the SDXL model, set or not
        assert job.per_server()[other_keys.url] > 0
        # Each server ran the workflow with ITS model keys (the double cannot execute model
        # nodes, so these items fail after the graph was accepted: still one result each).
        for double, prefix in ((with_models, ""), (other_keys, "other-")):
            async with AsyncClient(double.url) as client:
                for item in await client.queue.get_many(await client.queue.item_ids()):
                    keys = {n["model"]["key"] for n in item.session["graph"]["nodes"].values()}
                    assert keys == {prefix + "k-main", prefix + "k-sdxl"}


async def test_bad_values_fail_before_any_request() -> None:
    async with doubles(0.0) as (server,):
        async with ServerPool([server.url], **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            with pytest.raises(ValidationError):
                await pool.submit_batch(wf, {"A": ["not a number"]})
        assert server.count("POST", "/api/v1/queue/*/enqueue_batch") == 0


async def test_a_durable_job_resumes_without_rerunning_completed_variations(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "job.sqlite"
    async with doubles(0.01) as (server,):
        async with ServerPool([server.url], **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            job = await pool.submit_batch(wf, {"A": range(40)}, manifest=manifest)
            await wait_until(lambda: job.progress().counts.get("completed", 0) >= 10)
            # While the job runs, nobody else may run it (this process or another).
            async with ServerPool([server.url], **FAST) as other:
                with pytest.raises(JobBusyError) as busy:
                    await other.resume(manifest)
            assert str(tmp_path) in str(busy.value)
            assert busy.value.holder is not None
            assert "pid" in busy.value.holder
        assert job.manifest is not None
        assert job.manifest.closed
        # The client went away mid-job (items stay queued on the server); closing the pool
        # gave the job up, so it can be resumed, also with a server added since: its body is
        # compiled from the stored workflow. The first server holds its queue until the new
        # one has completed some, so the new one surely takes part.
        server.queue.paused = True
        async with doubles(0.0) as (added,):
            async with ServerPool([server.url, added.url], **FAST) as pool:
                job = await pool.resume(manifest)
                assert added.url in job.bodies
                await wait_until(lambda: job.per_server()[added.url] >= 3)
                server.queue.paused = False
                server.queue.wake()
                results = await job
                assert job.lock is not None
                assert not job.lock.held
                assert job.manifest is not None
                assert job.manifest.closed
            assert [r.index for r in results] == list(range(40))
            assert all(r.ok for r in results)
            assert [r.inputs["A"] for r in results] == list(range(40))  # names kept on resume
            assert [r.result.field_values["A"] for r in results] == list(range(40))
            # Each variation completed once over both servers: nothing lost or run twice.
            items = await completed_items(server) + await completed_items(added)
            made = Counter(i.field_values[0].value for i in items)
            assert made == Counter(range(40))
            math = node_of(wf, "integer_math")  # the new server ran the stored workflow
            moved = [r for r in results if r.server == added.url]
            assert [r.result[math] for r in moved] == [r.inputs["A"] * 7 for r in moved]


async def test_a_server_down_when_the_job_starts_takes_work_once_it_answers(
    tmp_path: Path,
) -> None:
    """A server that does not answer when a job starts is left out only until it answers:
    then its body is compiled (recorded in the manifest, for a resume) and it gets work."""
    manifest = tmp_path / "job.sqlite"
    async with doubles(0.01, 0.01) as (steady, late):
        late.faults.add("*", drop_connection=True, times=None)  # down: refuses everything
        async with ServerPool([steady.url, late.url], **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            math = node_of(wf, "integer_math")
            steady.queue.paused = True  # holds its items until the late server took some
            job = await pool.submit_batch(wf, {"A": range(60)}, manifest=manifest)
            assert job.excluded[late.url].startswith("not answering")
            late.faults.clear()
            await wait_until(lambda: job.per_server().get(late.url, 0) >= 5)
            steady.queue.paused = False
            steady.queue.wake()
            results = await job
        assert late.url not in job.excluded
        assert [r.index for r in results] == list(range(60))
        assert [r.result[math] for r in results] == [a * 7 for a in range(60)]
        items = await completed_items(steady) + await completed_items(late)
        assert Counter(i.field_values[0].value for i in items) == Counter(range(60))
    stored = await Manifest.open(manifest)
    try:
        assert set((await stored.meta())["bodies"]) == {steady.url, late.url}
    finally:
        await stored.close()


async def test_submit_refuses_a_workflow_making_several_items_before_any_request() -> None:
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        wf = await pool.load(examples.path("batch-generator"))
        with pytest.raises(ValidationError, match="submit_batch") as refused:
            await pool.submit(wf)
    assert refused.value.rule == "exactly one item"
    assert server.count("POST", "/api/v1/queue/*") == 0


async def test_a_canceled_job_stops_and_cancels_its_items_on_every_server(
    tmp_path: Path,
) -> None:
    async with doubles(0.05, 0.05) as servers:
        async with ServerPool([d.url for d in servers], **FAST) as pool:
            wf = await pool.load(examples.path("arithmetic-form"))
            job = await pool.submit_batch(wf, {"A": range(200)}, manifest=tmp_path / "j.sqlite")
            await wait_until(lambda: job.progress().done >= 4)
            await job.cancel()
            with pytest.raises(InvokeAIError, match="canceled"):
                await job
            assert 4 <= len(job.results) < 200
            manifest = job.manifest
            assert manifest is not None
            await wait_until(lambda: manifest.closed)  # the pool is still open
        for d in servers:
            async with AsyncClient(d.url) as client:
                status = (await client.queue.status()).queue
            assert status.pending == status.in_progress == 0


async def test_submit_runs_one_variation_on_the_least_busy_server() -> None:
    async with doubles(0.1, 0.1) as (busy, idle):
        async with AsyncClient(busy.url) as other_user:  # someone else's work on `busy`
            other = await other_user.workflows.load(examples.path("arithmetic-form"))
            theirs = await other.submit_batch({"A": range(10)}, detach=True)
            async with ServerPool([busy.url, idle.url], **FAST) as pool:
                wf = await pool.load(examples.path("arithmetic-form"))
                math = node_of(wf, "integer_math")
                await wait_until(lambda: (pool.members[0].queue_pending or 0) > 3)
                wf.set("A", 5)
                result = await pool.submit(wf)
            await theirs.cancel()
        assert result.ok
        assert result.result[math] == 35
        assert result.server == idle.url


async def test_a_submitted_run_streams_events_from_the_server_that_carries_it() -> None:
    """pool.submit() is a run: its events come from the server holding the item and, when
    that server stops answering, from the one that takes the item over (announced by a
    ServerAssigned event); awaiting it gives the one result."""
    async with doubles(0.0, 0.0) as servers, ServerPool([d.url for d in servers], **FAST) as pool:
        for d in servers:
            d.queue.paused = True  # the item waits in the queue it was sent to
        wf = await pool.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        wf.set("A", 6)
        run = pool.submit(wf)
        events = run.events()
        first = await anext(events)
        assert isinstance(first, ServerAssigned)
        assert first.previous is None
        held = next(d for d in servers if d.url == first.server)
        other = next(d for d in servers if d is not held)
        # The server holding it stops answering; the other one runs.
        held.faults.add("*", drop_connection=True, times=None)
        await held.drop_sockets()
        other.queue.paused = False
        other.queue.wake()
        rest = [event async for event in events]
        result = await run
    moved = [e for e in rest if isinstance(e, ServerAssigned)]
    assert [(e.server, e.previous) for e in moved] == [(other.url, held.url)]
    after = rest[rest.index(moved[0]) + 1:]
    assert after
    assert all(e.item_id == moved[0].item_id for e in after)
    assert any(isinstance(e, StatusChanged) and e.status == "completed" for e in after)
    assert result.ok
    assert result.server == other.url
    assert result.result[math] == 42
    assert [a.server for a in result.attempts] == [held.url]
    assert run.done


async def test_a_submitted_run_can_be_canceled() -> None:
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        server.queue.paused = True
        wf = await pool.load(examples.path("arithmetic-form"))
        run = pool.submit(wf)
        job = await run.job()
        await wait_until(lambda: job.placement(0) is not None)
        assert await run.cancel() == 1
        with pytest.raises(InvokeAIError, match="canceled"):
            await run
        async with AsyncClient(server.url) as client:
            status = (await client.queue.status()).queue
    assert status.pending == status.in_progress == 0
    assert status.canceled == 1


async def test_a_copy_bound_to_another_client_runs_there() -> None:
    """handle.copy(client=...) is how a handle moves to another server (the pool's way): it
    submits to that server only and keeps none of the first server's resolved board ids."""
    async with InvokeAIDouble() as one, InvokeAIDouble() as two, \
            AsyncClient(one.url) as first, AsyncClient(two.url) as second:
        wf = await first.workflows.load(examples.path("arithmetic-form"))
        moved = wf.copy(client=second)
        assert moved.client is second
        assert wf.client is first
        result = await (await moved.submit()).result()
        assert result.ok
        assert len(await second.queue.item_ids()) == 1
        assert await first.queue.item_ids() == []


async def test_a_job_whose_images_cannot_be_saved_ends_with_the_error(tmp_path: Path) -> None:
    # The folder is a file: saving the first image fails inside a task nobody awaits.
    # The job must end with that error instead of waiting forever for the variation.
    not_a_folder = tmp_path / "out"
    not_a_folder.write_text("a file, not a folder")
    async with doubles(0.0) as (server,), ServerPool([server.url], **FAST) as pool:
        wf = await pool.load(examples.path("noise-sweep"))
        job = await pool.submit_batch(wf, {"Seed": [1, 2]}, save_to=not_a_folder,
                                      manifest=tmp_path / "job.sqlite")
        assert await job.settled(timeout=120), "the job hung after a failed save"
        with pytest.raises(InvokeAIError) as failure:
            await job
        # Ended: its manifest is closed and the job unlocked while the pool stays open.
        assert job.manifest is not None
        assert job.lock is not None
        manifest, lock = job.manifest, job.lock
        await wait_until(lambda: manifest.closed and not lock.held)
    assert "out" in str(failure.value)
    assert isinstance(failure.value, ValidationError)
    assert not_a_folder.read_text() == "a file, not a folder"


async def test_local_image_files_run_on_every_server_uploaded_once_each(tmp_path: Path) -> None:
    """A workflow whose image input is a local file runs on any server of the pool: each
    distinct file goes to each server once (by content), results give back the path."""
    from PIL import Image

    Image.new("RGB", (80, 60), (10, 200, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (40, 20), (200, 10, 30)).save(tmp_path / "b.png")
    (tmp_path / "a-copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    async with doubles(0.01, 0.01, 0.01) as servers:
        async with ServerPool([d.url for d in servers], **FAST) as pool:
            wf = await pool.load(examples.path("image-input"))
            wf.set("Image", tmp_path / "a.png")
            job = await pool.submit_batch(wf, {"Scale Factor": [0.5, 0.25]}, runs=6)
            fixed = await job
            # Sweep the files themselves; a.png again under another name (same content).
            files = [str(tmp_path / name) for name in ("a.png", "b.png", "a-copy.png")]
            swept = await (await pool.submit_batch(wf, {"Image": files * 4}))
            # A file that is not there fails before any request.
            before = [d.count("POST", "/api/v1/*") for d in servers]
            with pytest.raises(ValidationError, match=r"missing\.png"):
                await pool.submit_batch(wf, {"Image": [str(tmp_path / "missing.png")]})
            assert [d.count("POST", "/api/v1/*") for d in servers] == before
        uploads = [d.count("POST", "/api/v1/images/upload") for d in servers]
        split = job.per_server()
    assert all(n > 0 for n in split.values()), split  # every server ran some
    assert all(r.ok for r in fixed + swept)
    sizes = [(r.result.image.width, r.result.image.height) for r in fixed]
    assert sizes == [(40, 30), (20, 15)] * 6
    assert [r.inputs["Image"] for r in swept] == files * 4  # what the user gave
    assert [(r.result.image.width, r.result.image.height) for r in swept[:3]] == [
        (40, 30), (20, 10), (40, 30)  # the workflow's Scale Factor 0.5
    ]
    # a.png and b.png once per server, for both jobs (a-copy.png is a.png's content).
    assert uploads == [2, 2, 2]


async def test_a_server_that_dies_mid_job_loses_nothing() -> None:
    """A server that vanishes (listener closed, connections cut, its queue gone with it):
    its unfinished variations run elsewhere; every variation gives exactly one result."""
    async with doubles(0.01) as (steady,):
        dying = await InvokeAIDouble().start()
        dying.queue.faults.node_delay = 0.01
        try:
            async with ServerPool([steady.url, dying.url], **FAST) as pool:
                wf = await pool.load(examples.path("arithmetic-form"))
                math = node_of(wf, "integer_math")
                job = await pool.submit_batch(wf, {"A": range(60)})
                await wait_until(lambda: job.per_server()[dying.url] >= 5)
                await dying.stop()
                results = await job
                states = pool.states()
        finally:
            await dying.stop()
    assert states[dying.url].startswith("down")
    assert [r.index for r in results] == list(range(60))
    assert [r.result[math] for r in results] == [a * 7 for a in range(60)]
    moved = [r for r in results if r.attempts]
    assert all(r.server == steady.url for r in moved)
    assert {r.attempts[0].server for r in moved} <= {dying.url}


async def test_a_server_that_fails_what_others_complete_is_left_out(tmp_path: Path) -> None:
    """A server that fails every item fast (here: it lacks the image the workflow names, as
    a server with another model set lacks a model) would drain the sweep as failures: each
    failure is tried once on another server, and the server is left out of the job."""
    from PIL import Image

    Image.new("RGB", (64, 48), (1, 2, 3)).save(tmp_path / "in.png")
    async with doubles(0.01, 0.0) as (good, bad):
        async with AsyncClient(good.url) as client:
            name = (await client.images.upload(tmp_path / "in.png")).image_name
        async with ServerPool([good.url, bad.url], **FAST) as pool:
            wf = await pool.load(examples.path("image-input"))
            wf.set("Image", name)  # only `good` has it
            job = await pool.submit_batch(wf, {"Scale Factor": [0.5, 0.25] * 15})
            results = await job
    assert all(r.ok for r in results), [r.result.error_message for r in results if not r.ok]
    assert {r.server for r in results} == {good.url}
    assert job.excluded[bad.url].startswith("left out: items that failed there completed")
    assert "not found" in job.excluded[bad.url]
    retried = [r for r in results if r.attempts]
    assert retried
    assert all(a.server == bad.url for r in retried for a in r.attempts)
    assert all(len(r.attempts) == 1 for r in retried)  # tried once more, elsewhere


HEALTH_STORIES = [  # (events, server left out after the last event or None)
    # Failures before anything completed: tried elsewhere, however many (a fast failing
    # server and a slow healthy one: the count does not depend on speed) ...
    ([("fail", "a", True)] * 30, None),
    # ... until one variation failed on both servers: it fails everywhere, deliver failures.
    ([("fail", "a", True), ("fail-again", "b", False), ("fail", "a", False)], None),
    # Once something completed, failures are tried elsewhere again.
    ([("fail", "a", True), ("fail-again", "b", False), ("ok", "b", None),
      ("fail", "a", True)], None),
    # b completes, then a fails: retried elsewhere.
    ([("ok", "b", None), ("fail", "a", True)], None),
    # Two of a's failures complete on b while a keeps failing: a is left out.
    ([("ok", "b", None), ("fail", "a", True), ("fail", "a", True),
      ("ok-after-a", "b", None), ("ok-after-a", "b", "a")], "a"),
    # a failed, then recovered (its last item completed): not left out.
    ([("ok", "b", None), ("fail", "a", True), ("fail", "a", True), ("ok", "a", None),
      ("ok-after-a", "b", None), ("ok-after-a", "b", None)], None),
]


@pytest.mark.parametrize(("events", "left_out"), HEALTH_STORIES)
def test_health_rules(events: list[tuple[str, str, Any]], left_out: str | None) -> None:
    from invokeai_client.pool._health import Health
    from invokeai_client.pool.results import Attempt

    health = Health()
    failed_on_a = [Attempt("a", 1, "batch", "failed")]
    verdict = None
    for kind, url, expected in events:
        if kind in ("fail", "fail-again"):
            before = failed_on_a if kind == "fail-again" else []
            assert health.failed(url, before, ["a", "b"]) is expected
        else:
            attempts = failed_on_a if kind == "ok-after-a" else []
            verdict = health.completed(url, attempts)
            if expected is not None:
                assert verdict == expected
    assert verdict == left_out


async def test_a_board_no_server_has_is_a_board_error_before_any_request() -> None:
    async with doubles(0.0, 0.0) as servers, ServerPool([d.url for d in servers], **FAST) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        with pytest.raises(BoardNotFoundError, match="nowhere-board") as missing:
            await pool.submit_batch(wf, {"A": [1, 2]}, board="nowhere-board")
    assert all(d.url in str(missing.value) for d in servers)
    assert [d.count("POST", "/api/v1/queue/*") for d in servers] == [0, 0]
