"""A thin synchronous facade over :class:`~invokeai_client.AsyncClient`, for scripts.

.. code-block:: python

    from invokeai_client import Client

    with Client("http://127.0.0.1:9090") as client:
        wf = client.workflows.load("flow.json")
        wf.set("Prompt", "a cat")
        result = wf.submit().result()                 # await run -> run.result()
        for item in wf.submit_batch({"Seed": [1, 2, 3]}).as_completed():
            print(item.field_values, item.ok)

One background thread (an anyio ``BlockingPortal``) runs one event loop that owns the
AsyncClient for the whole ``with`` block; every async member of the client, its
repositories, workflow handles, runs, batches, results and image refs is reachable through
blocking proxies (``Sync*`` classes here). See docs/sync.md.
"""

from ._bridge import CANCEL_GRACE, THREAD_NAME
from ._client import Client
from ._objects import (
    SyncBatchRun,
    SyncBoards,
    SyncImageRef,
    SyncImages,
    SyncModelInstall,
    SyncModels,
    SyncQueue,
    SyncRuns,
    SyncUploadScope,
    SyncWorkflowHandle,
    SyncWorkflowResult,
    SyncWorkflowRun,
    SyncWorkflows,
)
from ._proxy import Proxy, SyncAwaitable, SyncContext, SyncPaginator

__all__ = [
    "CANCEL_GRACE",
    "THREAD_NAME",
    "Client",
    "Proxy",
    "SyncAwaitable",
    "SyncBatchRun",
    "SyncBoards",
    "SyncContext",
    "SyncImageRef",
    "SyncImages",
    "SyncModelInstall",
    "SyncModels",
    "SyncPaginator",
    "SyncQueue",
    "SyncRuns",
    "SyncUploadScope",
    "SyncWorkflowHandle",
    "SyncWorkflowResult",
    "SyncWorkflowRun",
    "SyncWorkflows",
]
