"""What the sync Client costs over AsyncClient: the same work, one call after another.

    python benchmarks/sync_overhead.py              # against the double (own process)
    python benchmarks/sync_overhead.py --rounds 5 --calls 300
    python benchmarks/sync_overhead.py --against f7c30bc   # and the SDK of another commit

Two workloads, each done with ``AsyncClient`` (awaited in ``asyncio.run``) and with the sync
``Client`` (every call one hop into its portal thread and back), sequentially:

- ``server_info(refresh=True)``: one small REST call per step, the hop's worst case;
- ``runs.submit(graph)`` + ``run.result()``: one run per step (two hops per run).

Reported as calls per second and the sync/async ratio (best round of each, rounds
alternating; the machine is shared and noisy). Measured 0.77-0.83x for both workloads
(before: 0.57x and 0.72x when each call went through ``BlockingPortal.call``, which makes
two round trips).

``--against REV`` measures every workload and client with this tree's SDK and with REV's
(see ``_against.py``), each round in a child process, the versions taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _against import in_child, trees, turns
from _baseline import add_graph
from _servers import double_process

from invokeai_client import AsyncClient, Client


async def _async_info(url: str, calls: int) -> float:
    async with AsyncClient(url) as client:
        await client.server_info(refresh=True)
        start = time.perf_counter()
        for _ in range(calls):
            await client.server_info(refresh=True)
        return calls / (time.perf_counter() - start)


def _sync_info(url: str, calls: int) -> float:
    with Client(url) as client:
        client.server_info(refresh=True)
        start = time.perf_counter()
        for _ in range(calls):
            client.server_info(refresh=True)
        return calls / (time.perf_counter() - start)


async def _async_runs(url: str, calls: int) -> float:
    async with AsyncClient(url) as client:
        await (await client.runs.submit(add_graph(1, 2)))
        start = time.perf_counter()
        for i in range(calls):
            result = await (await client.runs.submit(add_graph(i, i + 1)))
            assert result.outputs["sum"] == 2 * i + 1
        return calls / (time.perf_counter() - start)


def _sync_runs(url: str, calls: int) -> float:
    with Client(url) as client:
        client.runs.submit(add_graph(1, 2)).result()
        start = time.perf_counter()
        for i in range(calls):
            result = client.runs.submit(add_graph(i, i + 1)).result()
            assert result.outputs["sum"] == 2 * i + 1
        return calls / (time.perf_counter() - start)


def _best(rounds: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    best_a = best_b = 0.0
    for _ in range(rounds):
        best_a = max(best_a, a())
        best_b = max(best_b, b())
    return best_a, best_b


def _sides(url: str, calls: int) -> dict[str, Callable[[], float]]:
    return {
        "server_info async": lambda: asyncio.run(_async_info(url, calls)),
        "server_info sync": lambda: _sync_info(url, calls),
        "submit + result async": lambda: asyncio.run(_async_runs(url, calls)),
        "submit + result sync": lambda: _sync_runs(url, calls),
    }


def _against(url: str, spec: str, rounds: int, calls: int) -> None:
    """Every side with this tree's SDK and with ``spec``'s, each round in a child."""
    with trees(spec) as both:
        best: dict[tuple[str, str], float] = {}
        for index in range(rounds):
            for name, tree in turns(index, both):
                for side in _sides(url, calls):
                    rate = in_child(tree, __file__, "--child", side, "--url", url,
                                    "--calls", str(calls))
                    best[name, side] = max(best.get((name, side), 0.0), rate)
    (new, _), (old, _) = both
    print(f"{'side':<24}{new + ' /s':>12}{old + ' /s':>12}{'new/old':>9}")
    for side in _sides(url, calls):
        print(f"{side:<24}{best[new, side]:>12.0f}{best[old, side]:>12.0f}"
              f"{best[new, side] / best[old, side]:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--against", metavar="REV_OR_DIR",
                        help="also measure with the SDK of this commit (or checkout)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one round of one side (a child of --against): calls per second
        print(json.dumps(_sides(args.url, args.calls)[args.child]()))
        return
    with double_process() as (url, _):
        if args.against:
            _against(url, args.against, args.rounds, args.calls)
            return
        sides = _sides(url, args.calls)
        rows = [
            (name, *_best(args.rounds, sides[f"{name} async"], sides[f"{name} sync"]))
            for name in ("server_info", "submit + result")
        ]
    print(f"{'workload':<18}{'async/s':>10}{'sync/s':>10}{'sync/async':>12}")
    for name, async_rate, sync_rate in rows:
        print(f"{name:<18}{async_rate:>10.0f}{sync_rate:>10.0f}{sync_rate / async_rate:>11.2f}x")


if __name__ == "__main__":
    main()
