"""Error handling: what fails where, and what the errors carry.

- Bad values fail at ``set()`` (before any request) with a ValidationError naming the input
  and the rule.
- A run that fails on the server raises RunFailedError when awaited, carrying the queue
  item, the node id, the error type and message (and the server's traceback).
- In a batch nothing raises: each WorkflowResult says ``ok`` or what went wrong.
- An unreachable server is a ConnectionError. Every error is an InvokeAIError.
"""

from __future__ import annotations

import asyncio

from _server import invokeai_url

from invokeai_client import (
    AsyncClient,
    ConnectionError,
    InvokeAIError,
    RunFailedError,
    ValidationError,
)
from invokeai_client.testing.local import free_port
from invokeai_client.workflows import examples


async def main(url: str) -> None:
    async with AsyncClient(url) as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))

        try:
            wf.set("Seed", -1)  # the server's schema says seed >= 0
        except ValidationError as exc:
            print(f"ValidationError input={exc.input} rule={exc.rule!r}: {exc}")

        try:
            wf.set("Sede", 1)
        except ValidationError as exc:
            first_line = str(exc).splitlines()[0]  # the rest lists the workflow's inputs
            print(f"ValidationError input={exc.input} rule={exc.rule!r}: {first_line}")

        # A negative canvas width passes the schema, but the node fails when it runs.
        run = await wf.copy().set("Canvas width", -8).submit()
        try:
            await run
        except RunFailedError as exc:
            node = wf.definition.nodes[exc.node_id or ""]
            print(f"RunFailedError item={exc.item_id} node={exc.node_id} ({node.label}) "
                  f"error_type={exc.error_type} message={exc.error_message!r}")

        # In a batch each item has its own outcome; failed ones do not stop the others.
        batch = await wf.submit_batch({"Canvas width": [64, -1, 32]})
        for result in await batch:  # in submission order
            width = result.field_values["Canvas width"]  # keyed by the swept label
            if result.ok:
                print(f"batch item width={width}: completed")
            else:
                error = result.error()  # the RunFailedError this result stands for
                print(f"batch item width={width}: {result.status} ({result.error_type}) {error}")

    try:
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", max_retries=0) as client:
            await client.server_info()
    except ConnectionError as exc:
        print(f"ConnectionError (an InvokeAIError: {isinstance(exc, InvokeAIError)}): {exc}")


if __name__ == "__main__":
    with invokeai_url() as url:
        asyncio.run(main(url))
