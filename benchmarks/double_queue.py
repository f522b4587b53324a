"""How fast the double's session queue itself is (no SDK involved).

    python benchmarks/double_queue.py              # 10,000 items of a 3-node and a 1-node graph
    python benchmarks/double_queue.py --items 2000
    python benchmarks/double_queue.py --against f7c30bc   # and the double of another commit

For each graph: the enqueue of one batch of N items (the processor paused), then the run of
all N with instant nodes, once with no socket attached (the double alone) and once with one
raw python-socketio client in the same process counting every event (what a benchmark that
shares the process with the double pays). Also the memory per pending and per finished item
(tracemalloc). These are the double's own figures; SDK-vs-baseline ratios are in run.py.
``--against REV`` measures this tree's double and REV's (see ``_against.py``), each in a
child process, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _against import in_child, trees

from invokeai_client.testing import InvokeAIDouble


def _edge(source: str, destination: str, field: str) -> dict[str, Any]:
    return {"source": {"node_id": source, "field": "value"},
            "destination": {"node_id": destination, "field": field}}


GRAPHS: dict[str, dict[str, Any]] = {
    "add (3 nodes, 8 events)": {
        "nodes": {"a": {"id": "a", "type": "integer", "value": 3},
                  "b": {"id": "b", "type": "integer", "value": 4},
                  "sum": {"id": "sum", "type": "add"}},
        "edges": [_edge("a", "sum", "a"), _edge("b", "sum", "b")],
    },
    "integer (1 node, 4 events)": {
        "nodes": {"a": {"id": "a", "type": "integer", "value": 3}}, "edges": [],
    },
}


async def _round(graph: dict[str, Any], items: int, with_socket: bool) -> dict[str, float]:
    async with InvokeAIDouble() as double, aiohttp.ClientSession() as http:
        double.queue.cache.enabled = False  # every node runs
        finished = asyncio.Event()
        seen = {"events": 0, "done": 0}
        sio = socketio.AsyncClient()
        if with_socket:
            def count(name: str, data: Any = None) -> None:
                seen["events"] += 1
                if name == "queue_item_status_changed" and data.get("status") == "completed":
                    seen["done"] += 1
                    if seen["done"] == items:
                        finished.set()

            sio.on("*", count)
            await sio.connect(double.url, socketio_path="/ws/socket.io", transports=["websocket"])
        double.queue.paused = True
        data = [[{"node_path": "a", "field_name": "value", "items": list(range(items))}]]
        started = time.perf_counter()
        async with http.post(f"{double.url}/api/v1/queue/default/enqueue_batch",
                             json={"batch": {"graph": graph, "data": data}}) as answer:
            assert answer.status == 200, await answer.text()
            await answer.read()
        enqueue_s = time.perf_counter() - started
        cpu0, wall0 = time.process_time(), time.perf_counter()
        double.queue.paused = False
        double.queue.wake()
        if with_socket:
            await finished.wait()
        else:
            while (await _completed(http, double.url)) < items:
                await asyncio.sleep(0.02)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if with_socket:
            await sio.disconnect()
        return {"enqueue_s": enqueue_s, "items_per_s": items / wall,
                "cpu_us_per_item": cpu / items * 1e6}


async def _completed(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/api/v1/queue/default/status") as answer:
        return int((await answer.json())["queue"]["completed"])


async def _bytes_per_item(graph: dict[str, Any], items: int) -> tuple[float, float]:
    """(bytes per pending item, bytes per finished item), distinct batch values per item."""
    async with InvokeAIDouble() as double, aiohttp.ClientSession() as http:
        double.queue.cache.enabled = False
        double.queue.paused = True
        data = [[{"node_path": "a", "field_name": "value", "items": list(range(items))}]]
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        async with http.post(f"{double.url}/api/v1/queue/default/enqueue_batch",
                             json={"batch": {"graph": graph, "data": data}}) as answer:
            await answer.read()
        gc.collect()
        pending = (tracemalloc.get_traced_memory()[0] - base) / items
        double.queue.paused = False
        double.queue.wake()
        while (await _completed(http, double.url)) < items:
            await asyncio.sleep(0.05)
        gc.collect()
        finished = (tracemalloc.get_traced_memory()[0] - base) / items
        tracemalloc.stop()
        return pending, finished


async def measure(items: int) -> list[dict[str, Any]]:
    rows = []
    for name, graph in GRAPHS.items():
        pending_bytes, finished_bytes = await _bytes_per_item(graph, items)
        for with_socket in (False, True):
            row = await _round(graph, items, with_socket)
            rows.append({"graph": name, "socket": with_socket, **row,
                         "bytes_pending": pending_bytes, "bytes_finished": finished_bytes})
    return rows


def _print(rows: list[dict[str, Any]], code: str = "") -> None:
    print(f"{'code':9} {'graph':28} {'socket':>7} {'enqueue':>9} {'items/s':>9} "
          f"{'cpu us/item':>12} {'B/pending':>10} {'B/finished':>11}")
    for row in rows:
        print(f"{code:9} {row['graph']:28} {'yes' if row['socket'] else 'no':>7} "
              f"{row['enqueue_s']:8.3f}s {row['items_per_s']:9.0f} "
              f"{row['cpu_us_per_item']:12.0f} {row['bytes_pending']:10.0f} "
              f"{row['bytes_finished']:11.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--against", metavar="REV_OR_DIR",
                        help="also measure the double of this commit (or checkout)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.items))))
    elif args.against:
        with trees(args.against) as both:
            for name, tree in both:
                _print(in_child(tree, __file__, "--child", "--items", str(args.items)), name)
    else:
        _print(asyncio.run(measure(args.items)))
