"""Module paths of 0.1.0 that moved keep working: the same objects under the old path, one
DeprecationWarning naming the new module when the old one is imported, and the 0.1.0 call
forms of the functions that now take other arguments."""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType
from typing import Any

import pytest

from invokeai_client.workflows import WorkflowDefinition, WorkflowHandle, examples

from .conftest import Peer
from .helpers import BUNDLED
from .test_workflows_sync import model_workflow

# (old module, its new home, names 0.1.0 exported there)
MOVED: list[tuple[str, str, list[str]]] = [
    ("invokeai_client.models", "invokeai_client.types",
     ["AuthStatus", "QueueStatus", "ProcessorStatus", "QueueCounts", "TERMINAL_STATUSES",
      "NodeFieldValue", "ServerInfo", "ServerModel", "SessionQueueItem", "Timestamp", "User",
      "is_batch_item", "parse_timestamp"]),
    ("invokeai_client.models.app", "invokeai_client.types.app",
     ["AuthStatus", "ServerInfo", "User"]),
    ("invokeai_client.models.boards", "invokeai_client.types.boards",
     ["Board", "BoardRef", "DeleteBoardResult", "UNCATEGORIZED"]),
    ("invokeai_client.models.events", "invokeai_client.types.wire_events",
     ["InvocationCompleteEvent", "QueueItemStatusChangedEvent", "ServerEvent", "UnknownEvent",
      "ProgressImage", "parse_event"]),
    ("invokeai_client.models.images", "invokeai_client.types.images",
     ["EmbeddedWorkflow", "IMAGE_CATEGORIES", "ImageDTO", "ImagesResult"]),
    ("invokeai_client.models.model_configs", "invokeai_client.types.model_configs",
     ["FoundModel", "INSTALL_TERMINAL_STATUSES", "KNOWN_BASES", "KNOWN_FORMATS", "KNOWN_TYPES",
      "ModelConfig", "ModelInstallJob"]),
    ("invokeai_client.models.queue", "invokeai_client.types.queue",
     ["BatchStatus", "EnqueueBatchResult", "QUEUE_STATUSES", "QueueAndProcessorStatus",
      "RetryItemsResult", "SessionQueueItemSummary", "TERMINAL_STATUSES"]),
    ("invokeai_client.models.workflows", "invokeai_client.types.workflows",
     ["CallCompatibility", "WorkflowRecord", "WorkflowSummary"]),
    ("invokeai_client.workflows.sync", "invokeai_client.workflows.model_sync",
     ["ModelSyncEntry", "ModelSyncReport", "installed_models"]),
    ("invokeai_client.workflows.graph", "invokeai_client.workflows._topology",
     ["BATCH_GROUPS", "resolve_connector_source"]),
]
WARNS_ABOUT = {"invokeai_client.workflows.graph": "invokeai_client.workflows.compile"}
"""The new home a warning names, where it is not the module the names come from."""


def fresh_import(name: str) -> tuple[ModuleType, list[str]]:
    """Import ``name`` anew; the deprecation messages about it."""
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, [str(w.message) for w in caught if w.category is DeprecationWarning
                    and str(w.message).startswith(f"{name} is deprecated")]


@pytest.mark.parametrize(("old", "new", "names"), MOVED, ids=[c[0] for c in MOVED])
def test_an_old_path_gives_the_same_objects_and_warns_once(old: str, new: str,
                                                           names: list[str]) -> None:
    module, messages = fresh_import(old)
    assert len(messages) == 1
    assert f"moved to {WARNS_ABOUT.get(old, new)}" in messages[0]
    source = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(source, name), name
    star: dict[str, Any] = {}
    exec(f"from {old} import *", star)  # the old star import still works
    assert all(star[name] is getattr(source, name) for name in names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.import_module(old)  # imported already: no second warning


def handle(name: str) -> WorkflowHandle:
    return WorkflowHandle(WorkflowDefinition.from_file(examples.path(name)), schemas=BUNDLED)


def test_the_old_graph_functions_take_a_handle_as_in_0_1_0() -> None:
    graph_module, _ = fresh_import("invokeai_client.workflows.graph")
    made = handle("batch-generator")
    body = made.compile(batch_id="b").to_dict()["batch"]
    graph = graph_module.build_graph(made, board=None, batch_targets=set(), validate=True)
    assert {k: graph[k] for k in ("nodes", "edges")} == {
        k: body["graph"][k] for k in ("nodes", "edges")}
    fed = {(d["node_path"], d["field_name"]) for group in body["data"] for d in group}
    assert graph_module.build_graph(made, board=None, batch_targets=fed,
                                    validate=True)["nodes"] == graph["nodes"]
    assert graph_module.batch_node_data(made, graph) == body["data"]
    assert graph_module.workflow_for_batch(made) == body["workflow"]
    assert graph_module.gui_workflow(made) == made.to_workflow_dict()
    assert [tuple(e) for e in graph_module.data_edges(made)] == [
        (e["source"]["node_id"], e["source"]["field"], e["destination"]["node_id"],
         e["destination"]["field"]) for e in graph["edges"]]


@pytest.mark.anyio
async def test_the_old_sync_models_takes_a_handle_as_in_0_1_0(double: Peer) -> None:
    sync_module, _ = fresh_import("invokeai_client.workflows.sync")
    assert double.double is not None
    double.double.add_model("juggernaut", base="sdxl", type="main", key="k-sdxl-here",
                            hash="blake3:x")
    data = model_workflow()
    data["nodes"] = data["nodes"][1:]  # the SDXL loader only
    data["exposedFields"] = data["exposedFields"][1:]
    async with double.client(events=False) as client:
        made = await client.workflows.load(data)
        report = await sync_module.sync_models(made, client)
        assert [e.matched_by for e in report] == ["name"]
        assert made.get(f"{data['nodes'][0]['id']}.model")["key"] == "k-sdxl-here"
        await sync_module.resolve_generators(made, client)
