"""Many runs at once from one client: one task per run, ``max_concurrency`` as the cap.

Each task works on its own copy of the loaded workflow (``wf.copy()``), so tasks never see
each other's values. All runs share the client's one HTTP session and one Socket.IO
connection; ``max_concurrency=4`` keeps at most four queue items in flight (later submits
wait their turn).
"""

from __future__ import annotations

import asyncio
import sys

from _server import invokeai_url

from invokeai_client import AsyncClient, ImageRef, WorkflowHandle
from invokeai_client.workflows import examples

RUNS = 20
peak = 0


async def render(client: AsyncClient, wf: WorkflowHandle, seed: int) -> tuple[int, ImageRef]:
    global peak
    mine = wf.copy().set("Seed", seed).set("Output width", 40 + seed)
    run = await mine.submit()
    peak = max(peak, client.runs.in_flight)
    result = await run
    return seed, result.image


async def main(url: str) -> None:
    async with AsyncClient(url, max_concurrency=4) as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        if sys.version_info >= (3, 11):  # a TaskGroup cancels the others if one fails
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(render(client, wf, s)) for s in range(RUNS)]
            done = [task.result() for task in tasks]
        else:
            done = await asyncio.gather(*(render(client, wf, s) for s in range(RUNS)))
        for seed, image in done:
            print(f"seed={seed} width={40 + seed} image={image.image_name} "
                  f"size={image.width}x{image.height}")
        print(f"{len(done)} runs, at most {peak} in flight (max_concurrency=4)")


if __name__ == "__main__":
    with invokeai_url() as url:
        asyncio.run(main(url))
