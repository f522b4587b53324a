"""The one adapter between the pool and the workflow compiler.

The pool needs, per server, a full enqueue body of the workflow with the handle's values (the
graph and, unless left off, the workflow JSON) and the sweep as ``Batch.data`` groups; it
then expands the groups itself (:func:`~invokeai_client.pool.variations.expand`). The body
comes from :meth:`WorkflowHandle.build_batch`, the facade over the pure
:func:`~invokeai_client.workflows.compile.compile` (with the handle's uploads and checks);
this module is the one place to change if the pool ever compiles without a handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..workflows._sweeps import swept_names as _names_of

if TYPE_CHECKING:
    from ..workflows.handle import WorkflowHandle

Groups = list[list[dict[str, Any]]]


def sweep_groups(
    handle: WorkflowHandle,
    sweep: Mapping[Any, Iterable[Any]] | None,
    zip: bool | Sequence[Sequence[Any]],
    data: Sequence[Sequence[Mapping[str, Any]]] | None,
) -> Groups:
    """``Batch.data`` groups for a sweep (keys as the handle takes them) plus raw ``data``."""
    return handle.sweep_groups(sweep, zip=zip, data=data)


def swept_names(
    handle: WorkflowHandle, sweep: Mapping[Any, Iterable[Any]] | None,
    zip: bool | Sequence[Sequence[Any]],
) -> dict[str, str]:
    """``"node_id.field_name"`` -> the name the user gave each swept input (the sweep's own
    key, or the label for an index), as :meth:`WorkflowHandle.submit_batch` names results."""
    return _names_of(handle.sweep_groups(sweep, zip=zip), handle.form)


def compile_body(
    handle: WorkflowHandle, groups: Groups, *, board_id: str | None, attach_workflow: bool
) -> dict[str, Any]:
    """The enqueue body of ``handle`` with every group of ``groups`` as batch data (checked)."""
    return handle.build_batch(data=groups, board=board_id, attach_workflow=attach_workflow)
