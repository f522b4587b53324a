"""Benchmarks of invokeai-client, each a ratio against a baseline measured in the same run.

    python benchmarks/run.py                 # all three
    python benchmarks/run.py --only a        # throughput on the double
    python benchmarks/run.py --only b        # 10,000 runs in flight: memory and routing
    python benchmarks/run.py --only c        # throughput on the real InvokeAI (fast-GC launcher)
    python benchmarks/run.py --only a --rounds 9   # more rounds: a tighter median
    python benchmarks/run.py --only a --against f7c30bc   # this SDK vs another commit's

(a) runs per second and client CPU per run at 1, 100 and 1,000 concurrent runs against the
    double (instant execution, its own process), vs the minimal hand-written loop in
    ``_baseline.py``. Target: SDK >= 0.9x the loop's runs/s.
(b) 10,000 runs in flight on one client (processor paused, then resumed): bytes per run
    (tracemalloc, client process only) and the time the socket's event handler takes per
    event (p50/p99). Targets: <= 4 KiB per run, p99 <= 2 ms.
(c) runs per second against the real InvokeAI 6.14.2 started with the gc.freeze launcher.
    Target: SDK >= 0.95x the loop.

Fairness: both sides run the same graph (``add_graph``, checked result by result) against
the same server process, each round with a fresh client, a warm-up that fills the
connection pool, a pruned server queue and a ``gc.collect()`` before the clock starts.
Rounds alternate (loop, SDK, SDK, loop, ...) so that drift in the machine's load hits both
sides alike. The machine is shared and noisy: the ratio reported is the MEDIAN of the ratios
of adjacent (loop, SDK) pairs, with the lowest and highest pair beside it; the ratio of the
best rounds is reported too. Client CPU is this process's (user + system); server CPU is
read from /proc for the server's process. The load average is recorded with every row.
Results print as a table and go to benchmarks/results/latest.json.

``--against REV`` measures this tree's SDK against REV's instead of against the loop (see
``_against.py``): every round of (a) and (c) runs one version's SDK in a child process (its
CPU is its own), the versions taking turns against one server; the ratio is new/old of
runs/s (median of adjacent pairs), with each version's CPU per run. (b) runs once per
version, each in its own child and against its own double process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _against import in_child, trees, turns
from _baseline import MinimalClient, add_graph
from _servers import double_process, real_process

from invokeai_client import AsyncClient

RESULTS = Path(__file__).resolve().parent / "results"

RunOne = Callable[[int], Awaitable[int]]

TARGETS = {"a": 0.9, "c": 0.95}
SCENARIO_A = ((1, 300), (100, 2000), (1000, 4000))
SCENARIO_C = ((1, 100), (50, 400))


@dataclass
class Round:
    """One timed round of one side."""

    runs_per_s: float
    cpu_ms: float
    server_cpu_ms: float | None


def _process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far; None where /proc is missing."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(run_one: RunOne, concurrency: int, total: int) -> None:
    """Run ``total`` runs with ``concurrency`` in flight, checking every value."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            value = await run_one(i)
            if value != 2 * i + 1:
                raise AssertionError(f"run {i} gave {value}, expected {2 * i + 1}")

    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))


async def _timed(
    run_one: RunOne, concurrency: int, total: int, server_pid: int | None
) -> Round:
    warm = min(concurrency, 100)
    await _drive(run_one, warm, min(total, 2 * warm))  # fills the connection pool
    gc.collect()
    server0 = _process_cpu(server_pid)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await _drive(run_one, concurrency, total)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server1 = _process_cpu(server_pid)
    server = None if server0 is None or server1 is None else (server1 - server0)
    return Round(total / wall, cpu / total * 1000,
                 None if server is None else server / total * 1000)


async def _sdk_round(
    url: str, concurrency: int, total: int, server_pid: int | None
) -> Round:
    async with AsyncClient(url, timeout=300) as client:

        async def one(i: int) -> int:
            run = await client.runs.submit(add_graph(i, i + 1))
            result = await run
            return int(result.outputs["sum"])

        return await _timed(one, concurrency, total, server_pid)


async def _baseline_round(
    url: str, concurrency: int, total: int, server_pid: int | None
) -> Round:
    async with MinimalClient(url) as client:

        async def one(i: int) -> int:
            return await client.run(i, i + 1)

        return await _timed(one, concurrency, total, server_pid)


async def _prune(url: str) -> None:
    """Drop finished items so that every round meets the same server state."""
    async with aiohttp.ClientSession() as http, http.put(
        f"{url}/api/v1/queue/default/prune"
    ) as answer:
        answer.raise_for_status()


def _median(values: list[float]) -> float:
    return statistics.median(values)


async def _compare(
    url: str, concurrency: int, total: int, rounds: int, server_pid: int | None
) -> dict[str, Any]:
    sdk: list[Round] = []
    base: list[Round] = []
    load_start = os.getloadavg()[0]
    for index in range(rounds):
        order = ("base", "sdk") if index % 2 == 0 else ("sdk", "base")
        for side in order:
            await _prune(url)
            if side == "sdk":
                sdk.append(await _sdk_round(url, concurrency, total, server_pid))
            else:
                base.append(await _baseline_round(url, concurrency, total, server_pid))
    await _prune(url)
    pairs = [s.runs_per_s / b.runs_per_s for s, b in zip(sdk, base, strict=True)]
    sdk_rps = [r.runs_per_s for r in sdk]
    base_rps = [r.runs_per_s for r in base]
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "runs": total,
        "rounds": rounds,
        "ratio": round(_median(pairs), 3),
        "ratio_min": round(min(pairs), 3),
        "ratio_max": round(max(pairs), 3),
        "ratio_of_best": round(max(sdk_rps) / max(base_rps), 3),
        "sdk_runs_per_s": round(_median(sdk_rps), 1),
        "baseline_runs_per_s": round(_median(base_rps), 1),
        "sdk_best_runs_per_s": round(max(sdk_rps), 1),
        "baseline_best_runs_per_s": round(max(base_rps), 1),
        "sdk_cpu_ms_per_run": round(_median([r.cpu_ms for r in sdk]), 3),
        "baseline_cpu_ms_per_run": round(_median([r.cpu_ms for r in base]), 3),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "pair_ratios": [round(r, 3) for r in pairs],
    }
    server = [r.server_cpu_ms for r in sdk + base if r.server_cpu_ms is not None]
    if server:
        row["server_cpu_ms_per_run"] = round(_median(server), 3)
    return row


def _versus(
    url: str, both: list[tuple[str, Path]], concurrency: int, total: int, rounds: int,
    server_pid: int | None,
) -> dict[str, Any]:
    """(a)/(c) of two SDK versions, each round in a child process (see --against)."""
    done: dict[str, list[Round]] = {name: [] for name, _ in both}
    load_start = os.getloadavg()[0]
    for index in range(rounds):
        for name, tree in turns(index, both):
            asyncio.run(_prune(url))
            done[name].append(Round(**in_child(
                tree, __file__, "--child", "sdk", "--url", url, "--levels", str(concurrency),
                "--runs", str(total), "--server-pid", str(server_pid or 0),
            )))
    (new, _), (old, _) = both
    pairs = [n.runs_per_s / o.runs_per_s for n, o in zip(done[new], done[old], strict=True)]
    row: dict[str, Any] = {
        "concurrency": concurrency, "runs": total, "rounds": rounds, "versions": [new, old],
        "new_over_old": round(_median(pairs), 3), "ratio_min": round(min(pairs), 3),
        "ratio_max": round(max(pairs), 3), "pair_ratios": [round(r, 3) for r in pairs],
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    for name, got in done.items():
        row[f"{name}_runs_per_s"] = round(_median([r.runs_per_s for r in got]), 1)
        row[f"{name}_cpu_ms_per_run"] = round(_median([r.cpu_ms for r in got]), 3)
        server = [r.server_cpu_ms for r in got if r.server_cpu_ms is not None]
        if server:
            row[f"{name}_server_cpu_ms_per_run"] = round(_median(server), 3)
    print(f"{row['concurrency']:>5} in flight: {new}/{old} runs/s {row['new_over_old']:.3f} "
          f"[{row['ratio_min']:.3f}..{row['ratio_max']:.3f}], cpu/run " + ", ".join(
              f"{name} {row[f'{name}_cpu_ms_per_run']:.3f} ms" for name, _ in both)
          + f", load {row['load_average']}", flush=True)
    return row


def bench_against(spec: str, chosen: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The chosen scenarios, this tree's SDK against ``spec``'s (see --against)."""
    rows: list[dict[str, Any]] = []
    with trees(spec) as both:
        for scenario, peer, levels in (("a", double_process, SCENARIO_A),
                                       ("c", real_process, SCENARIO_C)):
            if scenario not in chosen:
                continue
            with peer() as (url, pid):
                for concurrency, total in _levels(levels, args.levels, args.runs):
                    rows.append({"scenario": scenario, **_versus(
                        url, both, concurrency, total, args.rounds, pid)})
        if "b" in chosen:
            for name, tree in both:
                with double_process() as (url, _):
                    row = in_child(tree, __file__, "--child", "b", "--url", url,
                                   "--in-flight", str(args.in_flight))
                rows.append({"code": name, **row})
                print(f"b {name}: {row['bytes_per_run']} B/run, dispatch p50 "
                      f"{row['dispatch_p50_ms']} ms, p99 {row['dispatch_p99_ms']} ms",
                      flush=True)
    return rows


def _check(row: dict[str, Any], target: float) -> dict[str, Any]:
    row["target"] = f">= {target}x"
    row["met"] = row["ratio"] >= target
    return row


def _levels(default: tuple[tuple[int, int], ...], only: list[int] | None, runs: int | None
            ) -> list[tuple[int, int]]:
    chosen = [(c, t) for c, t in default if not only or c in only]
    chosen += [(c, 2000) for c in only or () if c not in {level for level, _ in default}]
    return [(c, runs or t) for c, t in chosen]


def bench_a(rounds: int, levels: list[int] | None = None, runs: int | None = None
            ) -> list[dict[str, Any]]:
    rows = []
    with double_process() as (url, pid):
        for concurrency, total in _levels(SCENARIO_A, levels, runs):
            row = asyncio.run(_compare(url, concurrency, total, rounds, pid))
            rows.append(_check({"scenario": "a: double", **row}, TARGETS["a"]))
            _print_row(rows[-1])
    return rows


def bench_c(rounds: int, levels: list[int] | None = None, runs: int | None = None
            ) -> list[dict[str, Any]]:
    rows = []
    with real_process(fast_gc=True) as (url, pid):
        for concurrency, total in _levels(SCENARIO_C, levels, runs):
            row = asyncio.run(_compare(url, concurrency, total, rounds, pid))
            rows.append(_check({"scenario": "c: real InvokeAI", **row}, TARGETS["c"]))
            _print_row(rows[-1])
    return rows


async def _in_flight(url: str, count: int) -> dict[str, Any]:
    async with AsyncClient(url, timeout=300) as client:
        await client._request("PUT", f"/api/v1/queue/{client.queue_id}/processor/pause")
        dispatch_times: list[float] = []
        # Time the socket's event handler itself (the router's dispatch of one frame).
        handlers = client._events._sio.handlers["/"]  # type: ignore[union-attr]
        handler = handlers["*"]

        def timed_dispatch(name: str, data: Any = None) -> None:
            started = time.perf_counter()
            handler(name, data)
            dispatch_times.append(time.perf_counter() - started)

        handlers["*"] = timed_dispatch
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        runs = []
        for start in range(0, count, 500):
            chunk = await asyncio.gather(
                *(client.runs.submit(add_graph(i, i + 1)) for i in range(start, start + 500))
            )
            runs.extend(chunk)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per_run = (after - before) / count
        await client._request("PUT", f"/api/v1/queue/{client.queue_id}/processor/resume")
        results = await asyncio.gather(*runs)
        wrong = sum(1 for i, r in enumerate(results) if r.outputs["sum"] != 2 * i + 1)
        ordered = sorted(dispatch_times)
        p99 = ordered[int(len(ordered) * 0.99)] * 1000
        return {
            "scenario": "b: in flight",
            "runs": count,
            "bytes_per_run": round(per_run),
            "events_routed": len(ordered),
            "dispatch_p50_ms": round(statistics.median(ordered) * 1000, 4),
            "dispatch_p99_ms": round(p99, 4),
            "dispatch_max_ms": round(ordered[-1] * 1000, 3),
            "wrong_results": wrong,
            "load_average": [round(os.getloadavg()[0], 2)],
            "target": "<= 4096 B/run, p99 <= 2 ms",
            "met": per_run <= 4096 and p99 <= 2.0 and wrong == 0,
        }


def bench_b(count: int) -> list[dict[str, Any]]:
    with double_process() as (url, _):
        row = asyncio.run(_in_flight(url, count))
    print(
        f"b: {row['runs']} runs in flight: {row['bytes_per_run']} B/run, dispatch "
        f"p50 {row['dispatch_p50_ms']} ms, p99 {row['dispatch_p99_ms']} ms over "
        f"{row['events_routed']} events, wrong results {row['wrong_results']}",
        flush=True,
    )
    return [row]


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['scenario']:<18} conc {row['concurrency']:>5} x{row['runs']:>5}  ratio "
        f"{row['ratio']:.3f} [{row['ratio_min']:.3f}..{row['ratio_max']:.3f}]  sdk "
        f"{row['sdk_runs_per_s']:>7} r/s  loop {row['baseline_runs_per_s']:>7} r/s  cpu/run "
        f"sdk {row['sdk_cpu_ms_per_run']:.3f} loop {row['baseline_cpu_ms_per_run']:.3f} ms  "
        f"load {row['load_average']}",
        flush=True,
    )


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | concurrency | ratio (median, [min..max] of pairs) | SDK runs/s | loop "
        "runs/s | CPU/run SDK / loop / server | load | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["scenario"].startswith("b"):
            lines.append(
                f"| {row['scenario']} | {row['runs']} in flight | {row['bytes_per_run']} B/run, "
                f"dispatch p50 {row['dispatch_p50_ms']} ms, p99 {row['dispatch_p99_ms']} ms | | "
                f"| | {row['load_average'][0]} | {row['target']} | {row['met']} |"
            )
            continue
        server = row.get("server_cpu_ms_per_run")
        lines.append(
            f"| {row['scenario']} | {row['concurrency']} | **{row['ratio']:.2f}x** "
            f"[{row['ratio_min']:.2f}..{row['ratio_max']:.2f}] | {row['sdk_runs_per_s']} | "
            f"{row['baseline_runs_per_s']} | {row['sdk_cpu_ms_per_run']:.2f} / "
            f"{row['baseline_cpu_ms_per_run']:.2f} / {'-' if server is None else f'{server:.2f}'}"
            f" ms | {row['load_average'][0]}-{row['load_average'][1]} | {row['target']} | "
            f"{row['met']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b", "c"], action="append")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side and level")
    parser.add_argument("--in-flight", type=int, default=10_000)
    parser.add_argument("--levels", type=int, action="append",
                        help="concurrency levels of a and c to run (default: all)")
    parser.add_argument("--runs", type=int, help="runs per round (default: per level)")
    parser.add_argument("--out", type=Path,
                        help="default: results/latest.json (results/against.json with "
                        "--against)")
    parser.add_argument("--against", metavar="REV_OR_DIR",
                        help="measure this SDK against the SDK of this commit (or checkout)")
    parser.add_argument("--child", choices=["sdk", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "sdk":  # one round of this process's SDK (a child of --against)
        done = asyncio.run(_sdk_round(args.url, args.levels[0], args.runs,
                                      args.server_pid or None))
        print(json.dumps(done.__dict__))
        return 0
    if args.child == "b":
        print(json.dumps(asyncio.run(_in_flight(args.url, args.in_flight))))
        return 0
    chosen = args.only or ["a", "b", "c"]
    rows: list[dict[str, Any]] = []
    started = time.time()
    if args.against:
        rows = bench_against(args.against, chosen, args)
        args.out = args.out or RESULTS / "against.json"
    if "a" in chosen and not args.against:
        rows += bench_a(args.rounds, args.levels, args.runs)
    if "b" in chosen and not args.against:
        rows += bench_b(args.in_flight)
    if "c" in chosen and not args.against:
        rows += bench_c(args.rounds, args.levels, args.runs)
    if not args.against:
        print()
        print(_table(rows))
    args.out = args.out or RESULTS / "latest.json"
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {name: version(name) for name in ("aiohttp", "python-socketio",
                                                      "python-engineio", "pydantic")},
        "against": args.against,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
