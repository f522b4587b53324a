"""Pool simulation: 8 doubles of different speeds, 5,000 variations, with and without failures.

    nice -n 10 python benchmarks/pool_sim.py [--variations 5000] [--json out.json]

The doubles run in a child process (so the client's CPU is measured alone), each with its own
per-node delay (the arithmetic workflow runs two nodes per item). Three runs:

1. ``single``: one AsyncClient driving one server of the median speed (node delay 0.09 s)
   with an eighth of the sweep as ONE batch (about the same wall time as the pool's run):
   the client CPU per item to beat. Per-item CPU includes what a client spends per second
   (socket, supervision), so the baseline runs at one server's pace, as a user with one
   GPU would.
2. ``pool``: ServerPool over the 8 servers. Reported per server: items, busy time (sum of
   started -> completed of its items, from the server's own timestamps) / wall time of the
   job; and the client's CPU per item.
3. ``failover``: the same, with 2 servers frozen (connections refused-like: every request
   dropped, sockets cut, processor paused) a third of the way in; one of them thaws two
   thirds in (its queue intact, like a restarted InvokeAI with its database). Checked:
   every variation delivered exactly once (one result each, correct), items that ran twice
   on the servers counted from their queues and compared with what the pool reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from invokeai_client import AsyncClient, ServerPool
from invokeai_client.workflows import examples

DELAYS = (0.05, 0.06, 0.075, 0.09, 0.1, 0.125, 0.15, 0.2)
"""Per-node delay of each server (two nodes per item: 0.1 s to 0.4 s per item)."""

_CHILD = """
import asyncio, sys, json
from invokeai_client.testing import InvokeAIDouble

async def main(delays):
    doubles = []
    for delay in delays:
        d = await InvokeAIDouble().start()
        d.queue.faults.node_delay = delay
        doubles.append(d)
    print(json.dumps([d.url for d in doubles]), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command, index = line.split()
        d = doubles[int(index)]
        if command == "freeze":
            d.queue.paused = True
            d.faults.add("*", drop_connection=True, times=None)
            await d.drop_sockets()
        elif command == "thaw":
            d.faults.clear()
            d.queue.paused = False
            d.queue.wake()
        print("ok", flush=True)
    for d in doubles:
        await d.stop()

asyncio.run(main([float(x) for x in sys.argv[1:]]))
"""


class Doubles:
    """The child process hosting the doubles, and its freeze/thaw commands."""

    def __init__(self, delays: tuple[float, ...]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, *map(str, delays)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.urls: list[str] = json.loads(self.proc.stdout.readline())

    async def command(self, command: str, index: int) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{command} {index}\n")
        self.proc.stdin.flush()
        await asyncio.to_thread(self.proc.stdout.readline)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def server_items(url: str) -> list[Any]:
    async with AsyncClient(url) as client:
        ids = await client.queue.item_ids()
        return await client.queue.get_summaries(ids)


async def single(url: str, n: int) -> dict[str, Any]:
    """One client, one batch of ``n`` items on one server: client CPU per item."""
    async with AsyncClient(url) as client:
        wf = await client.workflows.load(examples.path("arithmetic-form"))
        start_cpu, start = cpu(), time.perf_counter()
        batch = await wf.submit_batch({"A": range(n)})
        results = await batch.results()
        spent, wall = cpu() - start_cpu, time.perf_counter() - start
    assert len(results) == n
    assert all(r.ok for r in results)
    return {"items": n, "wall_s": round(wall, 2), "cpu_ms_per_item": round(spent / n * 1e3, 3)}


async def pool_run(doubles: Doubles, n: int, *, failover: bool) -> dict[str, Any]:
    async with ServerPool(doubles.urls, probe_interval=0.5, down_after=2.0) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        math = next(n_id for n_id, node in wf.definition.nodes.items()
                    if node.type == "integer_math")
        start_cpu, start = cpu(), time.perf_counter()
        job = await pool.submit_batch(wf, {"A": range(n)}, attach_workflow=False)
        if failover:
            await _fail_two(doubles, job, n)
        results = await job
        spent, wall = cpu() - start_cpu, time.perf_counter() - start
        split = job.per_server()
        duplicates = list(job.duplicates)
        if failover:  # let the thawed server's cleanup finish before counting
            for _ in range(100):
                if not pool.members[0].abandoned and not pool.members[1].abandoned:
                    break
                await asyncio.sleep(0.1)
    wrong = [r.index for r in results if not r.ok or r.result[math] != r.inputs[
        next(k for k in r.inputs)] * 7]
    report: dict[str, Any] = {
        "variations": n, "results": len(results), "distinct": len({r.index for r in results}),
        "wrong": len(wrong), "wall_s": round(wall, 2),
        "cpu_ms_per_item": round(spent / n * 1e3, 3), "enqueue_requests": job.requests,
    }
    report["servers"] = await _per_server(doubles.urls, split, wall, start, failover)
    if failover:
        report.update(await _exactly_once(doubles.urls, n, duplicates, results))
    return report


async def _fail_two(doubles: Doubles, job: Any, n: int) -> None:
    while job.progress().done < n // 3:
        await asyncio.sleep(0.1)
    await doubles.command("freeze", 0)
    await doubles.command("freeze", 1)
    while job.progress().done < 2 * n // 3:
        await asyncio.sleep(0.1)
    await doubles.command("thaw", 0)


async def _per_server(urls: list[str], split: dict[str, int], wall: float, start: float,
                      failover: bool) -> list[dict[str, Any]]:
    rows = []
    for index, url in enumerate(urls):
        items = await server_items(url) if not (failover and index == 1) else []
        busy = sum((i.completed_at - i.started_at).total_seconds() for i in items
                   if i.started_at and i.completed_at)
        delay = DELAYS[index] if index < len(DELAYS) else None
        rows.append({"url": url, "node_delay": delay, "delivered": split.get(url, 0),
                     "items_run": len(items), "busy_s": round(busy, 2),
                     "busy_over_wall": round(busy / wall, 3)})
    return rows


async def _exactly_once(urls: list[str], n: int, reported: list[dict[str, Any]],
                        results: list[Any]) -> dict[str, Any]:
    completed: Counter[int] = Counter()
    for index, url in enumerate(urls):
        if index == 1:
            continue  # still frozen: cannot be asked (its queue is the stranded part)
        for item in await server_items(url):
            if item.status == "completed":
                completed[item.field_values[0].value] += 1
    return {
        "every_variation_once": sorted(r.index for r in results) == list(range(n)),
        "ran_twice_on_servers": sum(c - 1 for c in completed.values() if c > 1),
        "ran_twice_reported": sum(d["status"] == "completed" for d in reported),
        "may_have_run_twice_flagged": sum(r.may_have_run_twice for r in results),
        "moved_to_other_servers": sum(bool(r.attempts) for r in results),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variations", type=int, default=5000)
    parser.add_argument("--json", help="write the report here too")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    base = Doubles((DELAYS[3],))
    try:
        report["single"] = await single(base.urls[0], args.variations // len(DELAYS))
    finally:
        base.close()
    for name, failover in (("pool", False), ("failover", True)):
        doubles = Doubles(DELAYS)
        try:
            report[name] = await pool_run(doubles, args.variations, failover=failover)
        finally:
            doubles.close()
        print(json.dumps({name: report[name]}, indent=1), flush=True)
    ratios = [s["busy_over_wall"] for s in report["pool"]["servers"]]
    report["pool"]["mean_busy_over_wall"] = round(sum(ratios) / len(ratios), 3)
    report["pool"]["cpu_vs_single"] = round(
        report["pool"]["cpu_ms_per_item"] / report["single"]["cpu_ms_per_item"], 3
    )
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    asyncio.run(main())
