"""Workflows: GUI-exported workflow JSON as typed, programmable objects.

- :class:`WorkflowDefinition`: the JSON, validated once and never changed.
- :class:`WorkflowHandle`: input values for one run (or many), in the form's order, checked by
  the field system; a facade that prepares (boards, uploads), compiles and enqueues.
- :class:`IvkWorkflowInput`: one form input (index, label, node id, field name, typed field).
- :mod:`.compile`: the pure compile stage (``from invokeai_client.workflows.compile import
  compile``), definition + values + schemas -> a typed
  :class:`~invokeai_client.types.batch.EnqueueBody`, exactly what the GUI would enqueue.
- :class:`ModelSyncReport`: what ``await handle.sync_models()`` matched.
"""

from .definition import ExposedField, NodeInput, WorkflowDefinition, WorkflowEdge, WorkflowNode
from .form import IvkWorkflowInput, WorkflowForm, WorkflowValues
from .handle import WorkflowHandle
from .model_sync import ModelSyncEntry, ModelSyncReport

__all__ = [
    "ExposedField",
    "IvkWorkflowInput",
    "ModelSyncEntry",
    "ModelSyncReport",
    "NodeInput",
    "WorkflowDefinition",
    "WorkflowEdge",
    "WorkflowForm",
    "WorkflowHandle",
    "WorkflowNode",
    "WorkflowValues",
]
