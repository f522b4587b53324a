"""Benchmarks of invokeai-client, each a ratio against a baseline measured in the same run.

    python benchmarks/run.py                 # all three
    python benchmarks/run.py --only a        # throughput on the double
    python benchmarks/run.py --only b        # 10,000 runs in flight: memory and routing
    python benchmarks/run.py --only c        # throughput on the real InvokeAI (fast-GC launcher)

(a) runs per second and client CPU per run at 1, 100 and 1,000 concurrent runs, against the
    double (instant execution, its own process), vs the minimal hand-written loop in
    ``_baseline.py``. Target: SDK >= 0.9x the loop's runs/s.
(b) 10,000 runs in flight on one client (processor paused, then resumed): bytes per run
    (tracemalloc, client process only) and the router's dispatch time per event (p50/p99).
    Targets: <= 4 KiB per run, p99 <= 2 ms.
(c) runs per second against the real InvokeAI 6.14.2 started with the gc.freeze launcher.
    Target: SDK >= 0.95x the loop.

The machine is shared and noisy: each scenario alternates SDK and baseline rounds and keeps
the best round of each. Results print as a table and go to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _baseline import MinimalClient, add_graph
from _servers import double_process, real_process

from invokeai_client import AsyncClient

RESULTS = Path(__file__).resolve().parent / "results"

RunOne = Callable[[int], Awaitable[int]]


async def _drive(run_one: RunOne, concurrency: int, total: int) -> tuple[float, float]:
    """Run ``total`` runs with ``concurrency`` in flight; (runs/s, client CPU ms per run)."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            value = await run_one(i)
            if value != 2 * i + 1:
                raise AssertionError(f"run {i} gave {value}, expected {2 * i + 1}")

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, total))))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return total / wall, cpu / total * 1000


async def _sdk_round(url: str, concurrency: int, total: int) -> tuple[float, float]:
    async with AsyncClient(url, timeout=300) as client:

        async def one(i: int) -> int:
            run = await client.runs.submit(add_graph(i, i + 1))
            result = await run
            return int(result.outputs["sum"])

        await _drive(one, min(concurrency, 10), min(total, 20))  # warm-up
        return await _drive(one, concurrency, total)


async def _baseline_round(url: str, concurrency: int, total: int) -> tuple[float, float]:
    async with MinimalClient(url) as client:

        async def one(i: int) -> int:
            return await client.run(i, i + 1)

        await _drive(one, min(concurrency, 10), min(total, 20))  # warm-up
        return await _drive(one, concurrency, total)


async def _compare(url: str, concurrency: int, total: int, rounds: int) -> dict[str, Any]:
    sdk: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    for _ in range(rounds):
        base.append(await _baseline_round(url, concurrency, total))
        sdk.append(await _sdk_round(url, concurrency, total))
    best_sdk = max(sdk)
    best_base = max(base)
    return {
        "concurrency": concurrency,
        "runs": total,
        "rounds": rounds,
        "sdk_runs_per_s": round(best_sdk[0], 1),
        "baseline_runs_per_s": round(best_base[0], 1),
        "ratio": round(best_sdk[0] / best_base[0], 3),
        "sdk_cpu_ms_per_run": round(min(c for _, c in sdk), 3),
        "baseline_cpu_ms_per_run": round(min(c for _, c in base), 3),
    }


def bench_a(rounds: int) -> list[dict[str, Any]]:
    rows = []
    with double_process() as url:
        for concurrency, total in ((1, 300), (100, 2000), (1000, 4000)):
            row = asyncio.run(_compare(url, concurrency, total, rounds))
            row["scenario"] = "a: double"
            rows.append(row)
            _print_row(row)
    return rows


def bench_c(rounds: int) -> list[dict[str, Any]]:
    rows = []
    with real_process(fast_gc=True) as url:
        for concurrency, total in ((1, 100), (50, 400)):
            row = asyncio.run(_compare(url, concurrency, total, rounds))
            row["scenario"] = "c: real InvokeAI"
            rows.append(row)
            _print_row(row)
    return rows


async def _in_flight(url: str, count: int) -> dict[str, Any]:
    async with AsyncClient(url, timeout=300) as client:
        await client._request("PUT", f"/api/v1/queue/{client.queue_id}/processor/pause")
        dispatch_times: list[float] = []
        router = client._router
        original = router.dispatch_raw

        def timed_dispatch(name: str, data: Any = None) -> None:
            started = time.perf_counter()
            original(name, data)
            dispatch_times.append(time.perf_counter() - started)

        router.dispatch_raw = timed_dispatch  # type: ignore[method-assign]
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
        return {
            "scenario": "b: in flight",
            "runs": count,
            "bytes_per_run": round(per_run),
            "events_routed": len(ordered),
            "dispatch_p50_ms": round(statistics.median(ordered) * 1000, 4),
            "dispatch_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 4),
            "dispatch_max_ms": round(ordered[-1] * 1000, 3),
            "wrong_results": wrong,
        }


def bench_b(count: int) -> list[dict[str, Any]]:
    with double_process() as url:
        row = asyncio.run(_in_flight(url, count))
    print(
        f"b: {row['runs']} runs in flight: {row['bytes_per_run']} B/run, dispatch "
        f"p50 {row['dispatch_p50_ms']} ms, p99 {row['dispatch_p99_ms']} ms over "
        f"{row['events_routed']} events, wrong results {row['wrong_results']}"
    )
    return [row]


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['scenario']:<18} conc {row['concurrency']:>5} runs {row['runs']:>5}  "
        f"sdk {row['sdk_runs_per_s']:>8} r/s  loop {row['baseline_runs_per_s']:>8} r/s  "
        f"ratio {row['ratio']:>5}  cpu/run sdk {row['sdk_cpu_ms_per_run']} ms "
        f"loop {row['baseline_cpu_ms_per_run']} ms",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["a", "b", "c"], action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=10_000)
    args = parser.parse_args()
    chosen = args.only or ["a", "b", "c"]
    rows: list[dict[str, Any]] = []
    if "a" in chosen:
        rows += bench_a(args.rounds)
    if "b" in chosen:
        rows += bench_b(args.in_flight)
    if "c" in chosen:
        rows += bench_c(args.rounds)
    RESULTS.mkdir(exist_ok=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": rows,
    }
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
