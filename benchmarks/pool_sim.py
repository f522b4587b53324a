"""Pool simulation: 8 doubles of different speeds, 5,000 variations, with and without failures.

    nice -n 10 python benchmarks/pool_sim.py [--variations 5000] [--runs single,pool,kill,freeze]
        [--json out.json]

Each double runs in its own child process (so the client's CPU is measured alone, and a
server can really die), with its own per-node delay (the arithmetic workflow runs two nodes
per item). Every child appends the A value of each item it completes to a log file (an
unbuffered write made before the completion event leaves, so it survives a kill): what ran
on the servers is counted from these logs, dead servers included. The runs:

1. ``single``: one AsyncClient driving one server of the median speed (node delay 0.09 s)
   with an eighth of the sweep as ONE batch (about the same wall time as the pool's run):
   the client CPU per item to beat. Per-item CPU includes what a client spends per second
   (socket, supervision), so the baseline runs at one server's pace, as a user with one
   GPU would.
2. ``pool``: ServerPool over the 8 servers. Reported per server: items, busy time (sum of
   started -> completed of its items, from the server's own timestamps) / wall time of the
   job; and the client's CPU per item.
3. ``kill``: the same, with 2 servers KILLED (SIGKILL: the process is gone, its listener
   closed, its connections reset by the kernel, what it held lost) a third of the way in;
   one of them is restarted on the same port two thirds in (a fresh double: it has no
   database, so the items it held are gone, as with an InvokeAI whose database was lost).
4. ``freeze``: the same, with 2 servers FROZEN (SIGSTOP: connections open, nothing answers,
   nothing runs) a third of the way in; one is thawed (SIGCONT) two thirds in with its queue
   intact, like a hung InvokeAI that recovers: it may start a given-up item before the
   pool's cancel arrives.

Checked in 3 and 4: every variation delivered exactly once with the right value; items
that completed on the servers more than once (from the logs) compared with what the pool
reported: ``job.duplicates`` (items that completed on a server that came back) plus results
flagged ``may_have_run_twice`` (an attempt was running when its server went away).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from invokeai_client import AsyncClient, ServerPool
from invokeai_client.workflows import examples

DELAYS = (0.05, 0.06, 0.075, 0.09, 0.1, 0.125, 0.15, 0.2)
"""Per-node delay of each server (two nodes per item: 0.1 s to 0.4 s per item)."""

_CHILD = """
import asyncio, os, sys
from aiohttp import web
from invokeai_client.testing import InvokeAIDouble

async def main(port, delay, log):
    double = InvokeAIDouble()
    double.queue.faults.node_delay = delay
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    transition = double.queue.transition

    def recording(item, status):
        moved = transition(item, status)
        if moved and status == "completed":  # before the completion event is sent
            os.write(fd, f"{item.field_values[0]['value']}\\n".encode())
        return moved

    double.queue.transition = recording
    runner = web.AppRunner(double.app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One double in its own process: start, kill (SIGKILL), freeze/thaw (SIGSTOP/SIGCONT),
    restart on the same port; its completion log."""

    def __init__(self, delay: float, folder: Path, index: int) -> None:
        self.delay = delay
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"server-{index}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.alive = False
        self.frozen = False
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self.port), str(self.delay), str(self.log)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the double on port {self.port} did not start")
        self.alive = True

    def signal(self, number: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, number)
        self.frozen = number == signal.SIGSTOP

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.alive = False

    def completed(self) -> Counter[int]:
        """A value -> how many times an item with it completed here (every life)."""
        if not self.log.exists():
            return Counter()
        return Counter(int(line) for line in self.log.read_text().split())

    def close(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGCONT)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class Servers:
    """The doubles of one run."""

    def __init__(self, delays: tuple[float, ...]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pool-sim-"))
        self.servers = [Server(d, self.folder, i) for i, d in enumerate(delays)]
        self.urls = [s.url for s in self.servers]

    def close(self) -> None:
        for server in self.servers:
            server.close()


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


async def pool_run(servers: Servers, n: int, *, failure: str | None) -> dict[str, Any]:
    """The pool over ``servers``; ``failure`` is None, "kill" or "freeze" (see the doc)."""
    async with ServerPool(servers.urls, probe_interval=0.5, down_after=2.0) as pool:
        wf = await pool.load(examples.path("arithmetic-form"))
        math = next(n_id for n_id, node in wf.definition.nodes.items()
                    if node.type == "integer_math")
        start_cpu, start = cpu(), time.perf_counter()
        job = await pool.submit_batch(wf, {"A": range(n)}, attach_workflow=False)
        events: list[str] = []
        if failure is not None:
            await _fail_two(servers, job, n, failure, events, start)
        results = await job
        spent, wall = cpu() - start_cpu, time.perf_counter() - start
        split = job.per_server()
        if failure == "freeze":  # let the thawed server's cleanup finish before counting
            for _ in range(100):
                if not pool.members[0].abandoned:
                    break
                await asyncio.sleep(0.1)
        duplicates = list(job.duplicates)
    wrong = [r.index for r in results if not r.ok or r.result[math] != r.inputs["A"] * 7]
    report: dict[str, Any] = {
        "variations": n, "results": len(results), "distinct": len({r.index for r in results}),
        "wrong": len(wrong), "wall_s": round(wall, 2),
        "cpu_ms_per_item": round(spent / n * 1e3, 3), "enqueue_requests": job.requests,
    }
    if events:
        report["events"] = events
    report["servers"] = await _per_server(servers, split, wall)
    if failure is not None:
        report.update(_exactly_once(servers, n, duplicates, results))
    return report


async def _fail_two(servers: Servers, job: Any, n: int, failure: str, events: list[str],
                    start: float) -> None:
    def note(what: str) -> None:
        events.append(f"{time.perf_counter() - start:.1f}s {what} at {job.progress().done}/{n}")

    first, second = servers.servers[:2]
    while job.progress().done < n // 3:
        await asyncio.sleep(0.1)
    for server in (first, second):
        if failure == "kill":
            server.kill()
        else:
            server.signal(signal.SIGSTOP)
    note(f"{'killed' if failure == 'kill' else 'froze'} servers 0 and 1")
    while job.progress().done < 2 * n // 3:
        await asyncio.sleep(0.1)
    if failure == "kill":
        await asyncio.to_thread(first.start)
        note("restarted server 0 on its port (empty queue)")
    else:
        first.signal(signal.SIGCONT)
        note("thawed server 0 (queue intact)")


async def _per_server(servers: Servers, split: dict[str, int], wall: float
                      ) -> list[dict[str, Any]]:
    rows = []
    for server in servers.servers:
        row: dict[str, Any] = {"url": server.url, "node_delay": server.delay,
                               "delivered": split.get(server.url, 0),
                               "completed_on_server": sum(server.completed().values())}
        if server.alive and not server.frozen:
            items = await server_items(server.url)
            busy = sum((i.completed_at - i.started_at).total_seconds() for i in items
                       if i.started_at and i.completed_at)
            row.update({"busy_s": round(busy, 2), "busy_over_wall": round(busy / wall, 3)})
        rows.append(row)
    return rows


def _exactly_once(servers: Servers, n: int, reported: list[dict[str, Any]],
                  results: list[Any]) -> dict[str, Any]:
    completed: Counter[int] = Counter()
    for server in servers.servers:
        completed.update(server.completed())
    twice = sorted(a for a, c in completed.items() if c > 1)
    flagged = {r.inputs["A"] for r in results if r.may_have_run_twice}
    reported_twice = {results[d["index"]].inputs["A"] for d in reported
                      if d["status"] == "completed"}
    return {
        "every_variation_once": sorted(r.index for r in results) == list(range(n)),
        "every_variation_completed_on_a_server": set(completed) == set(range(n)),
        "ran_twice_on_servers": sum(completed[a] - 1 for a in twice),
        "ran_twice_reported_in_duplicates": len(reported_twice),
        "may_have_run_twice_flagged": len(flagged),
        "ran_twice_not_reported": len(set(twice) - reported_twice - flagged),
        "moved_to_other_servers": sum(bool(r.attempts) for r in results),
    }


RUNS = ("single", "pool", "kill", "freeze")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variations", type=int, default=5000)
    parser.add_argument("--runs", default=",".join(RUNS), help="which runs, comma-separated")
    parser.add_argument("--json", help="write the report here too (merged into what it holds)")
    args = parser.parse_args()
    wanted = args.runs.split(",")
    report: dict[str, Any] = {}
    if args.json and Path(args.json).exists():
        report = json.loads(Path(args.json).read_text())
    for name in wanted:
        servers = Servers((DELAYS[3],) if name == "single" else DELAYS)
        try:
            if name == "single":
                report[name] = await single(servers.urls[0], args.variations // len(DELAYS))
            else:
                failure = None if name == "pool" else name
                report[name] = await pool_run(servers, args.variations, failure=failure)
        finally:
            servers.close()
        print(json.dumps({name: report[name]}, indent=1), flush=True)
    report.pop("failover", None)  # the old name of "freeze"
    if "pool" in report and "single" in report:
        ratios = [s["busy_over_wall"] for s in report["pool"]["servers"]]
        report["pool"]["mean_busy_over_wall"] = round(sum(ratios) / len(ratios), 3)
        report["pool"]["cpu_vs_single"] = round(
            report["pool"]["cpu_ms_per_item"] / report["single"]["cpu_ms_per_item"], 3
        )
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
