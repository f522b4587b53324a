"""What the workflow path costs over a raw graph: handle.submit() vs client.runs.submit(graph).

    python benchmarks/workflow_overhead.py                  # real InvokeAI 6.14.2 (fast GC)
    python benchmarks/workflow_overhead.py --peer double    # the double in its own process
    python benchmarks/workflow_overhead.py --rounds 9 --runs 200
    python benchmarks/workflow_overhead.py --board          # with an auto-add board
    python benchmarks/workflow_overhead.py --against f7c30bc  # and the SDK of another commit

Both sides run the same graph, one run after another, awaiting each result: the ``graph``
side submits ``handle.build_graph()`` (made once) with ``client.runs.submit``; the
``handle`` side calls ``handle.submit()``, which also prepares, compiles the graph, checks
it and attaches the workflow JSON (as the GUI does) every time. The workflow is the bundled
``arithmetic-form`` (five model-free nodes, caching off so every item executes). Reported:
client CPU per item of each side (user + system of this process) and their ratio, the
median of adjacent (graph, handle) pairs with the lowest and highest beside it; rounds
alternate (graph, handle, handle, graph, ...) so that load drift hits both alike. Target:
handle within 10% of graph (ratio <= 1.10).

``--board`` gives both sides an auto-add board (a :class:`Board` made once: the handle's
submit then checks everything before it asks the server, as with any board or upload).
``--against REV`` measures each side with this tree's SDK and with REV's (see
``_against.py``), each round in a child process, the versions taking turns against one
server; it prints each version's row and new/old per side.
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

from _against import in_child, trees, turns
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


async def workflow_sides(
    client: AsyncClient, *, board: bool = False
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One run of each side: ``graph`` and ``handle`` (see the module docstring)."""
    handle = await _handle(client)
    made = await client.boards.create("workflow-overhead") if board else None
    graph = handle.build_graph(board=made)

    async def by_graph() -> Any:
        return await (await client.runs.submit(graph))

    async def by_handle() -> Any:
        return await (await (handle.submit(board=made) if made else handle.submit()))

    return {"graph": by_graph, "handle": by_handle}


async def _round(url: str, side: str, runs: int, board: bool = False) -> float:
    """Client CPU milliseconds per item of one side (fresh client, warmed up)."""
    async with AsyncClient(url, timeout=300) as client:
        one = (await workflow_sides(client, board=board))[side]
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


async def _compare(url: str, rounds: int, runs: int, board: bool) -> dict[str, Any]:
    graph: list[float] = []
    handle: list[float] = []
    load = os.getloadavg()[0]
    for index in range(rounds):
        for side in turns(index, ["graph", "handle"]):
            await _prune(url)
            (graph if side == "graph" else handle).append(await _round(url, side, runs, board))
        print(f"round {index}: graph {graph[-1]:.3f} ms, handle {handle[-1]:.3f} ms "
              f"({handle[-1] / graph[-1]:.3f}x)", flush=True)
    return _row(graph, handle, runs, rounds, load)


def _against(url: str, spec: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each side with this tree's SDK and with ``spec``'s, round by round in children."""
    extra = ["--board"] if args.board else []
    with trees(spec) as both:
        cpu: dict[tuple[str, str], list[float]] = {}
        load = os.getloadavg()[0]
        for index in range(args.rounds):
            for name, tree in turns(index, both):
                for side in turns(index, ["graph", "handle"]):
                    asyncio.run(_prune(url))
                    cpu.setdefault((name, side), []).append(in_child(
                        tree, __file__, "--round", side, "--url", url, "--runs",
                        str(args.runs), *extra))
            print(f"round {index}: " + ", ".join(
                f"{name} {side} {values[-1]:.3f} ms" for (name, side), values in cpu.items()
            ), flush=True)
        rows = [{"code": name, **_row(cpu[name, "graph"], cpu[name, "handle"], args.runs,
                                      args.rounds, load)} for name, _ in both]
    (new, _), (old, _) = both
    for side in ("graph", "handle"):
        pairs = [n / o for n, o in zip(cpu[new, side], cpu[old, side], strict=True)]
        rows[0][f"{side}_new_over_old"] = round(statistics.median(pairs), 3)
        rows[0][f"{side}_new_over_old_range"] = [round(min(pairs), 3), round(max(pairs), 3)]
    return rows


def _row(
    graph: list[float], handle: list[float], runs: int, rounds: int, load: float
) -> dict[str, Any]:
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
    parser.add_argument("--board", action="store_true", help="submit with an auto-add board")
    parser.add_argument("--against", metavar="REV_OR_DIR",
                        help="also measure with the SDK of this commit (or checkout)")
    parser.add_argument("--out", type=Path, help="write the row(s) as JSON here")
    parser.add_argument("--round", choices=["graph", "handle"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:  # one round of one side (a child of --against): its CPU ms per item
        print(json.dumps(asyncio.run(_round(args.url, args.round, args.runs, args.board))))
        return 0
    peer = real_process(fast_gc=True) if args.peer == "real" else double_process()
    with peer as (url, _pid):
        if args.against:
            rows = [{"peer": args.peer, **row} for row in _against(url, args.against, args)]
        else:
            rows = [{"peer": args.peer, **asyncio.run(_compare(url, args.rounds, args.runs,
                                                                args.board))}]
    for row in rows:
        print(
            f"{args.peer} {row.get('code', '')}: handle.submit {row['handle_cpu_ms_per_item']} "
            f"ms vs runs.submit(graph) {row['graph_cpu_ms_per_item']} ms client CPU per item: "
            f"{row['ratio']:.3f}x [{row['ratio_min']:.3f}..{row['ratio_max']:.3f}], target "
            f"{row['target']}, met {row['met']}"
        )
    if len(rows) == 2:
        print(f"{rows[0]['code']} / {rows[1]['code']}: graph {rows[0]['graph_new_over_old']}x "
              f"{rows[0]['graph_new_over_old_range']}, handle {rows[0]['handle_new_over_old']}x "
              f"{rows[0]['handle_new_over_old_range']}")
    if args.out is not None:
        args.out.write_text(json.dumps(rows if len(rows) > 1 else rows[0], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
