"""Quick start: load a workflow, set its inputs, submit it, await the result, save the image.

The workflow is ``noise-sweep``, a model-free example shipped with the SDK
(``blank_image -> img_noise -> img_blur -> img_resize -> save_image``); any workflow
exported from the InvokeAI workflow editor loads the same way:
``await client.workflows.load("my-flow.json")``.
"""

from __future__ import annotations

import asyncio

from _server import OUT, invokeai_url

from invokeai_client import AsyncClient
from invokeai_client.workflows import examples


async def main(url: str) -> None:
    async with AsyncClient(url) as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        for item in wf.inputs:  # the form's inputs, in the order the GUI shows them
            print(f"input {item.index}: {item.label!r} ({item.type_name}) = {item.value!r}")

        # Keys are labels (or indexes, or "node_id.field_name"); values are checked here.
        wf.set("Seed", 42).set("Color", "#d04010")
        wf.set("Output width", 160).set("Output height", 120)

        run = await wf.submit()  # returns once the server has the queue item
        result = await run  # the WorkflowResult: status, outputs, images
        image = result.image
        path = await image.save(OUT, name="quickstart.png")
        print(f"item {result.item_id} {result.status}: {path} ({image.width}x{image.height})")


if __name__ == "__main__":
    with invokeai_url() as url:
        asyncio.run(main(url))
