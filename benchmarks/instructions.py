"""Client instructions per run, SDK vs the minimal loop: a deterministic CPU measure.

    python benchmarks/instructions.py              # both sides, 300 runs, concurrency 10
    python benchmarks/instructions.py --runs 600 --concurrency 100
    python benchmarks/instructions.py --sides graph,handle --concurrency 1   # the workflow path
    python benchmarks/instructions.py --sides graph,handle --against f7c30bc  # vs another commit

``--against REV`` (or a directory) counts every side again with the SDK of that commit (a
temporary git worktree, removed after; see ``_against.py``) in the same run, against the same
double, and prints the two versions side by side.

Timings on a shared 2-core machine swing by 2x from one minute to the next; instruction
counts do not. Each side's client runs under valgrind (cachegrind, no cache simulation)
against the double in its own, untraced process, once with no timed runs and once with
``--runs``; the difference divided by ``--runs`` is the client's instructions per run (the
start-up and the warm-up cancel out). Needs valgrind (``apt-get install valgrind``); takes a
few minutes, since valgrind slows the client about 50 times.

Instructions are not time: the real CPU per run also pays for cache misses and for the
scheduling of two busy processes on two cores (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _against import HERE, checkout, env_for, label
from _baseline import MinimalClient, add_graph
from _servers import double_process
from run import _drive
from workflow_overhead import workflow_sides

from invokeai_client import AsyncClient


async def _client(side: str, url: str, concurrency: int, runs: int) -> None:
    """The traced part: warm up, then ``runs`` runs (checked) with ``concurrency`` in flight."""
    if side in ("graph", "handle"):
        async with AsyncClient(url, timeout=300) as client:
            one = (await workflow_sides(client))[side]
            for _ in range(10):
                await one()
            for _ in range(runs):  # sequential: the workflow benchmark's own setting
                await one()
    elif side == "sdk":
        async with AsyncClient(url, timeout=300) as client:

            async def one(i: int) -> int:
                run = await client.runs.submit(add_graph(i, i + 1))
                return int((await run).outputs["sum"])

            await _drive(one, concurrency, 2 * concurrency)
            await _drive(one, concurrency, runs)
    else:
        async with MinimalClient(url) as loop_client:

            async def base(i: int) -> int:
                return await loop_client.run(i, i + 1)

            await _drive(base, concurrency, 2 * concurrency)
            await _drive(base, concurrency, runs)


def _count(side: str, url: str, concurrency: int, runs: int, tree: Path) -> int:
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--traced", side, "--url", url,
        "--concurrency", str(concurrency), "--runs", str(runs),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          env=env_for(tree))
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def _per_run(side: str, url: str, args: argparse.Namespace, tree: Path) -> float:
    empty = _count(side, url, args.concurrency, 0, tree)
    full = _count(side, url, args.concurrency, args.runs, tree)
    return (full - empty) / args.runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sides", default="sdk,loop",
                        help="sdk,loop (the SDK vs the minimal loop) or graph,handle "
                        "(runs.submit(graph) vs handle.submit() of one workflow, sequential)")
    parser.add_argument("--against", metavar="REV_OR_DIR",
                        help="also count every side with the SDK of this commit (or checkout)")
    parser.add_argument("--traced", choices=["sdk", "loop", "graph", "handle"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.traced:
        asyncio.run(_client(args.traced, args.url, args.concurrency, args.runs))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sides = args.sides.split(",")
    with contextlib.ExitStack() as stack:
        trees = [HERE] + ([stack.enter_context(checkout(args.against))] if args.against else [])
        names = [label(tree) for tree in trees]
        url, _ = stack.enter_context(double_process())
        per_run: dict[tuple[str, str], float] = {}
        for side in sides:
            for name, tree in zip(names, trees, strict=True):
                per_run[name, side] = _per_run(side, url, args, tree)
                print(f"{name:>9} {side:6} {per_run[name, side] / 1e6:6.3f} M instructions "
                      "per run", flush=True)
    ratios = [(sides[0], side) for side in sides[1:]]  # the first side against each other
    print(f"\n{'code':>9} " + " ".join(f"{side:>8}" for side in sides)
          + "".join(f" {a}/{b}" for a, b in ratios))
    for name in names:
        print(f"{name:>9} " + " ".join(f"{per_run[name, side] / 1e6:7.3f}M" for side in sides)
              + "".join(f" {per_run[name, a] / per_run[name, b]:{len(a) + len(b) + 1}.3f}"
                        for a, b in ratios))
    if len(names) == 2:
        print(f"{'new/old':>9} " + " ".join(
            f"{per_run[names[0], side] / per_run[names[1], side]:8.3f}" for side in sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
