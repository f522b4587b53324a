"""examples/notebook.ipynb executed on a real Jupyter kernel (nbclient + ipykernel) against
the real InvokeAI: the sync Client and AsyncClient (top-level await) cells run a workflow,
and their output cells hold the images."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .conftest import Peer

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"


def pngs(cell: Any) -> list[tuple[int, int]]:
    sizes = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data:
            image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
            sizes.append(image.size)
    return sizes


def test_the_notebook_runs_on_a_real_kernel_and_shows_the_images(
    real_server: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("INVOKEAI_URL", real_server.url)  # the kernel inherits it
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    sync_cell, async_cell, batch_cell = (
        next(c for c in code if marker in c.source)
        for marker in ("Client(url).open()", "await progress(await", "submit_batch")
    )
    assert pngs(sync_cell) == [(96, 72)]  # the sync Client inside a kernel cell
    assert pngs(async_cell) == [(80, 60)]  # AsyncClient with top-level await
    assert pngs(batch_cell) == [(80, 60)] * 3  # the handle keeps the sizes it was given
    widgets = [o for o in async_cell.outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets  # the live progress widget
    printed = "".join(o.get("text", "") for o in batch_cell.outputs)
    assert "{'Seed': 1} completed" in printed


@pytest.mark.anyio
async def test_images_and_previews_display_inline(multiuser_double: Peer) -> None:
    """``_repr_png_`` fetches with the client's token (a multi-user server), previews are
    JPEG; IPython calls these hooks synchronously, so the test calls them from a thread."""
    import anyio.to_thread

    from invokeai_client import AsyncClient, NodeProgress
    from invokeai_client.workflows import examples

    from .conftest import USER

    assert multiuser_double.double is not None
    faults = multiuser_double.double.queue.faults
    faults.node_delay, faults.progress_steps, faults.progress_preview = 0.05, 2, (32, 24)
    async with AsyncClient(multiuser_double.url, email=USER[0], password=USER[1]) as client:
        wf = await client.workflows.load(examples.path("noise-sweep"))
        wf.set("Output width", 50).set("Output height", 40)
        run = await wf.submit()
        previews = [e async for e in run.events() if isinstance(e, NodeProgress) and e.image]
        result = await run
        png = await anyio.to_thread.run_sync(result.image._repr_png_)
    assert png is not None
    assert Image.open(io.BytesIO(png)).size == (50, 40)
    jpeg = previews[0]._repr_jpeg_()
    assert jpeg is not None
    assert Image.open(io.BytesIO(jpeg)).size == (32, 24)


def test_the_sync_client_refuses_a_web_handlers_loop_but_not_when_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from invokeai_client import Client, RunningLoopError

    async def inside_a_loop() -> None:
        with pytest.raises(RunningLoopError, match="Jupyter cells are fine"):
            Client("http://127.0.0.1:9").open()
        monkeypatch.setenv("INVOKEAI_CLIENT_ALLOW_BLOCKING", "1")
        with pytest.raises(Exception) as caught:  # allowed: it tries, and cannot connect
            Client("http://127.0.0.1:9", max_retries=0).open()
        assert not isinstance(caught.value, RunningLoopError)

    asyncio.run(inside_a_loop())
