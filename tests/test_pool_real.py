"""The pool on REAL InvokeAI servers: three of them, one with a small queue limit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from invokeai_client import AsyncClient, QueueFullError, ServerPool
from invokeai_client.pool import Manifest, Policy
from invokeai_client.testing import LocalInvokeAI
from invokeai_client.workflows import examples

from .conftest import Peer
from .helpers import node_of
from .test_cli import cli_env

pytestmark = [pytest.mark.anyio, pytest.mark.real]

SMALL_QUEUE = 20

SWEEP = 80
"""Variations of the kill-and-resume job: killed after 10, far from done however slowly this
process notices (a loaded machine starves it while the servers go on)."""


@pytest.fixture(scope="module")
def three_servers(real_server: Peer) -> Iterator[list[str]]:
    """The session's real server plus two more (started together, ~1.3 GB each); the last
    has ``max_queue_size`` 20."""
    extra = [LocalInvokeAI(), LocalInvokeAI(env={"INVOKEAI_MAX_QUEUE_SIZE": str(SMALL_QUEUE)})]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda server: server.start(), extra))
    try:
        yield [real_server.url, *(server.url for server in extra)]
    finally:
        for server in extra:
            server.stop()


async def completed_by_batch(url: str, batch_ids: set[str]) -> int:
    async with AsyncClient(url) as client:
        items = await client.queue.get_summaries(await client.queue.item_ids())
    return sum(i.status == "completed" and i.batch_id in batch_ids for i in items)


async def test_300_variations_over_three_real_servers_run_exactly_once(
    three_servers: list[str],
) -> None:
    async with ServerPool(three_servers) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        a, b = wf.input("A").key, wf.input("B").key
        job = await pool.submit_batch(wf, {"A": range(30), "B": range(10)},
                                      attach_workflow=False)
        results = await job
        split = job.per_server()
    print(f"\nsplit of 300 variations over 3 real servers: {split}")
    assert [r.index for r in results] == list(range(300))
    assert {(r.inputs[a], r.inputs[b]) for r in results} == {
        (x, y) for x in range(30) for y in range(10)
    }
    for r in results:
        assert r.ok, r.result.error_message
        assert r.result[math] == r.inputs[a] * r.inputs[b]
        assert not r.attempts
    assert sorted(split) == sorted(three_servers)
    assert all(n > 0 for n in split.values()), split
    # Each server completed exactly the items it delivered: nothing ran twice.
    for url, delivered in split.items():
        batches = {r.result.batch_id for r in results if r.server == url}
        assert await completed_by_batch(url, batches) == delivered


async def test_a_sweep_larger_than_the_queue_is_refused_before_anything_is_sent(
    three_servers: list[str],
) -> None:
    small = three_servers[2]
    async with AsyncClient(small) as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        before = await client.queue.item_ids()
        with pytest.raises(QueueFullError) as info:
            await wf.submit_batch({"A": range(SMALL_QUEUE + 5)})
        assert await client.queue.item_ids() == before
    assert info.value.requested == SMALL_QUEUE + 5
    assert f"max_queue_size {SMALL_QUEUE}" in str(info.value)


async def test_the_pool_completes_a_sweep_larger_than_the_queue_limit(
    three_servers: list[str],
) -> None:
    small = three_servers[2]
    # A policy that asks for deep queues: the queue limit must still hold.
    async with ServerPool([small], policy=Policy(lead_time=60.0, max_lead=100)) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        math = node_of(wf, "integer_math")
        results = await (await pool.submit_batch(wf, {"A": range(3 * SMALL_QUEUE)}))
    assert [r.result[math] for r in results] == [a * 7 for a in range(3 * SMALL_QUEUE)]
    async with AsyncClient(small) as client:
        items = await client.queue.get_summaries(await client.queue.item_ids())
    ours = {r.result.batch_id for r in results}
    assert Counter(i.status for i in items if i.batch_id in ours) == {
        "completed": 3 * SMALL_QUEUE
    }


async def test_the_same_sweep_from_ray_actors_equals_the_pools(
    three_servers: list[str],
) -> None:
    """500 variations over 2 real servers, from 2 async Ray actors on a local Ray cluster
    started here; the results equal a ServerPool run's, variation by variation."""
    ray = pytest.importorskip("ray")
    from invokeai_client.pool.distributed import plain_result, run_on_ray

    servers = three_servers[:2]
    workflow = json.loads(examples.path("arithmetic-form").read_text())
    sweep = {"A": range(50), "B": range(10)}
    async with ServerPool(servers) as pool:
        wf = await pool.load(workflow)
        math = node_of(wf, "integer_math")
        by_pool = [plain_result(r) for r in await (await pool.submit_batch(wf, sweep))]
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        print(f"\nlocal Ray cluster up in {time.monotonic() - started:.1f}s")
        by_ray = await anyio.to_thread.run_sync(
            lambda: run_on_ray(workflow, servers, sweep, actors=2, shard_size=100)
        )
    finally:
        ray.shutdown()
    assert len(by_ray) == len(by_pool) == 500
    assert [r["index"] for r in by_ray] == list(range(500))
    for mine, theirs in zip(by_ray, by_pool, strict=True):
        assert mine["status"] == theirs["status"] == "completed"
        assert mine["inputs"] == theirs["inputs"]
        assert mine["outputs"][math] == theirs["outputs"][math]
    assert {r["server"] for r in by_ray} == set(servers)


async def test_a_cli_job_killed_midway_on_real_servers_resumes_exactly(
    three_servers: list[str], tmp_path: Path
) -> None:
    """``invokeai-client batch`` over 2 real servers, killed with SIGKILL midway, then
    ``--resume``: every variation completed exactly once on the servers' queues."""
    servers = three_servers[:2]
    out = tmp_path / "renders"
    args = [sys.executable, "-m", "invokeai_client.cli", "batch",
            str(examples.path("noise-sweep")), "--sweep", f"Seed=1..{SWEEP}", "--out", str(out)]
    first_new: dict[str, int] = {}
    for url in servers:
        args += ["--server", url]
        async with AsyncClient(url) as client:
            first_new[url] = max(await client.queue.item_ids(), default=0) + 1
    process = await asyncio.create_subprocess_exec(
        *args, env=cli_env(), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    manifest: Manifest | None = None
    for _ in range(3000):
        await asyncio.sleep(0.1)
        if (out / "job.sqlite").exists():
            manifest = manifest or await Manifest.open(out / "job.sqlite")
            if (await manifest.counts()).get("completed", 0) >= 10:
                break
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert manifest is not None
    before = (await manifest.counts()).get("completed", 0)
    await manifest.close()
    assert 10 <= before < SWEEP, "killed too late to test resume"
    again = await anyio.run_process([*args, "--resume"], env=cli_env(), check=False)
    assert again.returncode == 0, again.stderr.decode()
    seeds: Counter[int] = Counter()
    for url in servers:  # every item made since the job started, on both servers
        async with AsyncClient(url) as client:
            ids = [i for i in await client.queue.item_ids() if i >= first_new[url]]
            for item in await client.queue.get_summaries(ids):
                if item.status == "completed":
                    values = {fv.field_name: fv.value for fv in item.field_values or ()}
                    seeds[values["seed"]] += 1
    assert seeds == Counter(range(1, SWEEP + 1))
    assert len(list(out.glob("*.png"))) == SWEEP


async def test_local_image_files_run_on_every_real_server(
    three_servers: list[str], tmp_path: Path
) -> None:
    """An image input set to a local file, and a sweep over local files, run on any of the 3
    real servers (the double's test counts the uploads: once per server and content)."""
    from PIL import Image

    Image.new("RGB", (80, 60), (10, 200, 30)).save(tmp_path / "a.png")
    Image.new("RGB", (48, 32), (200, 10, 30)).save(tmp_path / "b.png")
    files = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    async with ServerPool(three_servers) as pool:
        wf = await pool.load(examples.path("image-input"))
        wf.set("Image", tmp_path / "a.png")
        fixed = await (await pool.submit_batch(wf, {"Scale Factor": [0.5, 0.25]}, runs=6))
        swept_job = await pool.submit_batch(wf, {"Image": files * 6})
        swept = await swept_job
        sizes = [(r.result.image.width, r.result.image.height) for r in fixed + swept]
    assert all(r.ok for r in fixed + swept), [r.result.error_message for r in fixed + swept]
    assert sizes[:12] == [(40, 30), (20, 15)] * 6
    assert sizes[12:] == [(40, 30), (24, 16)] * 6  # the workflow's Scale Factor 0.5
    assert [r.inputs["Image"] for r in swept] == files * 6
    servers_used = {r.server for r in fixed + swept}
    assert len(servers_used) >= 2, servers_used
