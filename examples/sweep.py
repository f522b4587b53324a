"""A sweep: every combination of some input values in ONE request, with live progress.

``submit_batch`` sends one ``enqueue_batch`` (InvokeAI expands it into queue items);
``batch.events()`` reports progress while ``batch.as_completed()`` yields each item's
result as soon as it finishes.
"""

from __future__ import annotations

import asyncio
import sys

from _server import OUT, invokeai_url

from invokeai_client import AsyncClient, BatchRun, StatusChanged
from invokeai_client.workflows import examples


async def show_progress(batch: BatchRun) -> None:
    async for event in batch.events():
        if isinstance(event, StatusChanged) and event.terminal:
            counts = batch.counts  # live: pending, in_progress, completed, failed, canceled
            done = counts.completed + counts.failed + counts.canceled
            print(f"progress: {done}/{counts.total} done", file=sys.stderr)


async def main(url: str) -> None:
    async with AsyncClient(url) as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        # 3 seeds x 2 radii = 6 items (zip=True would pair the lists instead).
        batch = await wf.submit_batch({"Seed": [1, 2, 3], "Blur radius": [0, 3]})
        print(f"batch {batch.batch_id}: {len(batch)} items in one request")

        progress = asyncio.create_task(show_progress(batch))
        async for result in batch.as_completed():
            values = result.field_values  # this item's values: {"Seed": 1, "Blur radius": 0}
            if not result.ok or not result.images:
                print(f"item {result.item_id} {result.status}: {result.error_message}")
                continue
            seed, radius = values["Seed"], values["Blur radius"]
            path = await result.image.save(OUT, name=f"sweep-seed{seed}-radius{radius:g}.png")
            print(f"seed={seed} radius={radius:g} -> {path}")
        await progress


if __name__ == "__main__":
    with invokeai_url() as url:
        asyncio.run(main(url))
