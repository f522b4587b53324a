"""Deprecated alias of :mod:`invokeai_client.workflows.model_sync` (the same objects; the
handle-taking forms of 0.1.0 keep working). Use ``await handle.sync_models()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._deprecated import alias_of
from . import _prepare
from . import model_sync as _new
from .handle import WorkflowHandle
from .model_sync import MatchedBy, ModelSyncEntry, ModelSyncReport, installed_models

if TYPE_CHECKING:
    from ._client import WorkflowClient
    from .form import WorkflowForm

__all__ = [
    "MatchedBy",
    "ModelSyncEntry",
    "ModelSyncReport",
    "installed_models",
    "resolve_generators",
    "sync_models",
]


async def sync_models(
    target: WorkflowHandle | WorkflowForm, client: WorkflowClient, **options: Any
) -> ModelSyncReport:
    """:func:`.model_sync.sync_models` that also takes a handle (its 0.1.0 form)."""
    form = target.form if isinstance(target, WorkflowHandle) else target
    return await _new.sync_models(form, client, **options)


async def resolve_generators(handle: WorkflowHandle, client: WorkflowClient) -> None:
    """Compute the generator nodes of ``handle`` that need ``client``'s server (0.1.0 form of
    ``await handle.resolve_generators()``)."""
    await _prepare.resolve_generators(handle.form, client.context.http)


alias_of(_new, globals())
