"""What the workflow path costs over a raw graph: handle.submit() vs client.runs.submit(graph).

    python benchmarks/workflow_overhead.py                  # real InvokeAI 6.14.2 (fast GC)
    python benchmarks/workflow_overhead.py --peer double    # the double in its own process
    python benchmarks/workflow_overhead.py --rounds 9 --runs 200

Both sides run the same graph, one run after another, awaiting each result: the ``graph``
side submits ``handle.build_graph()`` (made once) with ``client.runs.submit``; the
``handle`` side calls ``handle.submit()``, which also prepares, compiles the graph, checks
it and attaches the workflow JSON (as the GUI does) every time. The workflow is the bundled
``arithmetic-form`` (five model-free nodes, caching off so every item executes). Reported:
client CPU per item of each side (user + system of this process) and their ratio, the
median of adjacent (graph, handle) pairs with the lowest and highest beside it; rounds
alternate (graph, handle, handle, graph, ...) so that load drift hits both alike. Target:
handle within 10% of graph (ratio <= 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import double_process, real_process
from run import _prune

from invokeai_client import AsyncClient
from invokeai_client.workflows import WorkflowHandle, examples

TARGET = 1.10
WORKFLOW = "arithmetic-form"


async def _handle(client: AsyncClient) -> WorkflowHandle:
    made = await client.workflows.load(examples.path(WORKFLOW))
    for node in made.definition.invocation_nodes():
        made.set_node(node.id, use_cache=False)
    return made.set("A", 5)


async def workflow_sides(client: AsyncClient) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One run of each side: ``graph`` and ``handle`` (see the module docstring)."""
    handle = await _handle(client)
    graph = handle.build_graph()

    async def by_graph() -> Any:
        return await (await client.runs.submit(graph))

    async def by_handle() -> Any:
        return await (await handle.submit())

    return {"graph": by_graph, "handle": by_handle}


async def _round(url: str, side: str, runs: int) -> float:
    """Client CPU milliseconds per item of one side (fresh client, warmed up)."""
    async with AsyncClient(url, timeout=300) as client:
        one = (await workflow_sides(client))[side]
        expected = (await one()).outputs
        for _ in range(10):
            await one()
        gc.collect()
        cpu0 = time.process_time()
        for _ in range(runs):
            result = await one()
            if result.outputs != expected:
                raise AssertionError(f"{side}: {result.outputs} != {expected}")
        return (time.process_time() - cpu0) / runs * 1000


async def _compare(url: str, rounds: int, runs: int) -> dict[str, Any]:
    graph: list[float] = []
    handle: list[float] = []
    load = os.getloadavg()[0]
    for index in range(rounds):
        for side in (("graph", "handle") if index % 2 == 0 else ("handle", "graph")):
            await _prune(url)
            (graph if side == "graph" else handle).append(await _round(url, side, runs))
        print(f"round {index}: graph {graph[-1]:.3f} ms, handle {handle[-1]:.3f} ms "
              f"({handle[-1] / graph[-1]:.3f}x)", flush=True)
    pairs = [h / g for h, g in zip(handle, graph, strict=True)]
    ratio = statistics.median(pairs)
    return {
        "workflow": WORKFLOW,
        "runs": runs,
        "rounds": rounds,
        "graph_cpu_ms_per_item": round(statistics.median(graph), 3),
        "handle_cpu_ms_per_item": round(statistics.median(handle), 3),
        "ratio": round(ratio, 3),
        "ratio_min": round(min(pairs), 3),
        "ratio_max": round(max(pairs), 3),
        "pair_ratios": [round(p, 3) for p in pairs],
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "target": f"<= {TARGET}x",
        "met": ratio <= TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=["real", "double"], default="real")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=150, help="items per round and side")
    parser.add_argument("--out", type=Path, help="write the row as JSON here")
    args = parser.parse_args()
    peer = real_process(fast_gc=True) if args.peer == "real" else double_process()
    with peer as (url, _pid):
        row = {"peer": args.peer, **asyncio.run(_compare(url, args.rounds, args.runs))}
    print(
        f"{args.peer}: handle.submit {row['handle_cpu_ms_per_item']} ms vs runs.submit(graph) "
        f"{row['graph_cpu_ms_per_item']} ms client CPU per item: {row['ratio']:.3f}x "
        f"[{row['ratio_min']:.3f}..{row['ratio_max']:.3f}], target {row['target']}, "
        f"met {row['met']}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
