"""Workflows: GUI-exported workflow JSON as typed, programmable objects.

- :class:`WorkflowDefinition`: the JSON, validated once and never changed.
- :class:`WorkflowHandle`: input values for one run (or many), in the form's order, checked by
  the field system; builds the graph and the enqueue body exactly like the GUI does.
- :class:`IvkWorkflowInput`: one form input (index, label, node id, field name, typed field).
- :class:`ModelSyncReport`: what ``await handle.sync_models()`` matched.
"""

from .definition import ExposedField, NodeInput, WorkflowDefinition, WorkflowEdge, WorkflowNode
from .handle import IvkWorkflowInput, WorkflowHandle
from .model_sync import ModelSyncEntry, ModelSyncReport

__all__ = [
    "ExposedField",
    "IvkWorkflowInput",
    "ModelSyncEntry",
    "ModelSyncReport",
    "NodeInput",
    "WorkflowDefinition",
    "WorkflowEdge",
    "WorkflowHandle",
    "WorkflowNode",
]
