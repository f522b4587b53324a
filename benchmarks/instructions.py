"""Client instructions per run, SDK vs the minimal loop: a deterministic CPU measure.

    python benchmarks/instructions.py              # both sides, 300 runs, concurrency 10
    python benchmarks/instructions.py --runs 600 --concurrency 100
    python benchmarks/instructions.py --sides graph,handle --concurrency 1   # the workflow path

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
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def _count(side: str, url: str, concurrency: int, runs: int) -> int:
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--traced", side, "--url", url,
        "--concurrency", str(concurrency), "--runs", str(runs),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sides", default="sdk,loop",
                        help="sdk,loop (the SDK vs the minimal loop) or graph,handle "
                        "(runs.submit(graph) vs handle.submit() of one workflow, sequential)")
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
    with double_process() as (url, _):
        per_run = {}
        sides = args.sides.split(",")
        for side in sides:
            empty = _count(side, url, args.concurrency, 0)
            full = _count(side, url, args.concurrency, args.runs)
            per_run[side] = (full - empty) / args.runs
            print(f"{side:4} {per_run[side] / 1e6:6.3f} M instructions per run", flush=True)
    first, second = sides
    print(f"{first}/{second} {per_run[first] / per_run[second]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
