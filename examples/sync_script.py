"""The sync Client: the same API without async/await, for scripts and a plain REPL.

``with Client(url) as client:`` starts one background thread running one event loop that
owns an AsyncClient (one HTTP session, one Socket.IO stream) for the whole block. Every
method blocks until it is done; ``await run`` becomes ``run.result()``, ``async for``
becomes ``for``. Ctrl-C while waiting cancels the server item, as in the async API.
"""

from __future__ import annotations

from _server import OUT, invokeai_url

from invokeai_client import Client, RunFailedError
from invokeai_client.workflows import examples


def main(url: str) -> None:
    with Client(url) as client:
        print(f"InvokeAI {client.server_info().version}")

        wf = client.workflows.load(examples.path("noise-sweep"))
        wf.set("Seed", 7).set("Output width", 128).set("Output height", 96)
        result = wf.submit().result()  # blocks until the item is done
        image = result.image
        path = image.save(OUT, name="sync.png")
        print(f"item {result.item_id} {result.status}: {path} ({image.width}x{image.height})")

        # A sweep is still ONE request; its results arrive as a plain iterator.
        batch = wf.submit_batch({"Seed": [1, 2, 3]})
        for item in batch.as_completed():
            value = item.field_values["Seed"]  # keyed by the swept label
            saved = item.image.save(OUT, name=f"sync-seed{value}.png")
            print(f"seed={value} -> {saved}")
        print(f"{batch.counts.completed} of {len(batch)} completed")

        # Paginated listings are plain iterators too.
        names = [board.board_name for board in client.boards.list()]
        print(f"{len(names)} boards on the server")

        # Errors are raised where you wait, with what the server said.
        graph = {"nodes": {"d": {"id": "d", "type": "div", "a": 1, "b": 0}}, "edges": []}
        try:
            client.runs.submit(graph).result()
        except RunFailedError as exc:
            print(f"RunFailedError node={exc.node_id} error_type={exc.error_type}")


if __name__ == "__main__":
    with invokeai_url() as url:
        main(url)
