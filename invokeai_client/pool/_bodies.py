"""Per server, the enqueue body of a job: compiled when the job starts, or later, when a
server that did not answer then comes back (or joins a resumed job). The one adapter
between the pool and the workflow compiler.

The pool needs, per server, a full enqueue body of the workflow with the handle's values (the
graph and, unless left off, the workflow JSON) and the sweep as ``Batch.data`` groups; it
then expands the groups itself (:func:`~invokeai_client.pool.variations.expand`). The body
comes from :meth:`WorkflowHandle.build_batch`, the facade over the pure
:func:`~invokeai_client.workflows.compile.compile` (with the handle's uploads and checks).

A server is left out of a job for one of two kinds of reasons. *Permanent*: it lacks a
model or the board (``ModelNotFoundError``, ``BoardError``), or refuses the workflow in
another way; it never gets work from this job. *Temporary*: it did not answer (down when
the job started, or timed out while its models were looked up); its reason starts with
:data:`NOT_ANSWERING`, and the job compiles its body when the probe sees it answer again
(see :meth:`~invokeai_client.pool.job.PoolJob.try_join`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import errors
from ..workflows._prepare import resolve_board
from ..workflows._sweeps import swept_names as _names_of
from ..workflows.model_sync import sync_models
from ._images import Groups, LocalImages, named
from .variations import chunk_body

if TYPE_CHECKING:
    from ..workflows.handle import WorkflowHandle
    from ._member import Member
    from .variations import VariationSet

NOT_ANSWERING = "not answering"
"""How the reason of a temporary exclusion starts (the server is tried again)."""

NEW_WITH_IMAGES = (
    "not part of the job when it started, and the job's local images are not in its manifest"
)

Body = dict[str, Any]


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


def temporary(why: str) -> bool:
    """Whether a server left out for ``why`` may still join the job (it did not answer)."""
    return why.startswith(NOT_ANSWERING)


@dataclass
class Recipe:
    """What compiles a job's body for one more server: the handle as it was submitted (a
    copy: the user may change theirs), the sweep's groups, board, options and local images.
    ``compiled`` shares one body between servers with the same models, board and uploads."""

    handle: WorkflowHandle | None
    """None for a resumed job: ``workflow`` is loaded by each new server instead."""
    groups: Groups
    board: Any
    attach_workflow: bool
    sync: bool
    images: LocalImages
    uploaded: MutableMapping[tuple[str, str], str]
    stored: dict[str, Body] = field(default_factory=dict)
    """Bodies already made for a server (a resumed job's manifest): used as they are."""
    stored_uploads: dict[str, dict[str, str]] = field(default_factory=dict)
    workflow: dict[str, Any] | None = None
    """A resumed job's stored workflow JSON (with its values); None: no new server can
    join (the job's local images are not in the manifest)."""
    compiled: dict[str, Body] = field(default_factory=dict)

    def workflow_dict(self) -> dict[str, Any]:
        """The workflow JSON with the job's values (what a manifest keeps)."""
        if self.handle is not None:
            return self.handle.to_workflow_dict()
        return dict(self.workflow or {})

    async def body_for(self, member: Member) -> tuple[Body, dict[str, str]]:
        """``member``'s body and its names of the job's local images. Raises
        ``ModelNotFoundError`` / ``BoardError`` (never for this job), ``ConnectionError`` /
        ``TimeoutError`` (not now)."""
        if member.url in self.stored:
            return self.stored[member.url], self.stored_uploads.get(member.url, {})
        if self.handle is not None:
            copy = self.handle.copy(client=member.client)
        elif self.workflow is not None:
            copy = await member.client.workflows.load(self.workflow)
        else:
            raise errors.ValidationError(
                NEW_WITH_IMAGES, input="manifest", rule="local images on the job's servers"
            )
        if self.sync and copy.model_fields():
            # A model the user set is found on each server (its key is local).
            await sync_models(copy.form, member.client, follow_explicit=True)
        board_id = await resolve_board(member.client.boards, self.board)
        names = await self.images.upload(member, self.uploaded)
        for full, value in self.images.values.items():
            copy.set(full, named(value, names))
        models = [f.value for f in copy.model_fields()]
        key = json.dumps([models, board_id, names], sort_keys=True, default=str)
        if key not in self.compiled:
            self.compiled[key] = compile_body(copy, self.groups, board_id=board_id,
                                              attach_workflow=self.attach_workflow)
        return self.compiled[key], names

    async def all(
        self, members: Sequence[Member]
    ) -> tuple[dict[str, Body], dict[str, str], dict[str, dict[str, str]]]:
        """Bodies of the members that answer and can run the job, the others' reasons (see
        :func:`temporary`), and each server's names of the local images."""
        bodies: dict[str, Body] = {}
        excluded: dict[str, str] = {}
        uploads: dict[str, dict[str, str]] = {}
        by_board = 0  # servers left out for the board alone
        for member in members:
            if member.state != "up":
                excluded[member.url] = member.why or NOT_ANSWERING
                if not temporary(excluded[member.url]):
                    excluded[member.url] = f"{NOT_ANSWERING}: {excluded[member.url]}"
                continue
            if self.handle is None and self.workflow is None and member.url not in self.stored:
                excluded[member.url] = NEW_WITH_IMAGES
                continue
            try:
                bodies[member.url], names = await self.body_for(member)
            except (errors.ModelNotFoundError, errors.BoardError) as exc:
                excluded[member.url] = str(exc)
                by_board += isinstance(exc, errors.BoardError)
                continue
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                excluded[member.url] = f"{NOT_ANSWERING}: {exc}"
                continue
            if names:
                uploads[member.url] = names
        if not bodies and by_board and not any(map(temporary, excluded.values())):
            raise errors.BoardNotFoundError(  # a board problem, not a model one: say so
                f"no server of the pool can run this job with board {self.board!r}: "
                + "; ".join(f"{url}: {why}" for url, why in excluded.items()), status=404,
            )
        return bodies, excluded, uploads


def stored_recipe(
    meta: dict[str, Any], variations: VariationSet,
    uploaded: MutableMapping[tuple[str, str], str],
) -> Recipe:
    """The recipe of a resumed job: its stored bodies, and for a server added since, the
    stored workflow (loaded by that server) with one variation as the sweep (a body's data
    is replaced per chunk). A job with local images compiles for no new server: the
    manifest keeps no image bytes."""
    settings = meta["settings"]
    groups: Groups = []
    if variations.fields and variations.variations:
        first = chunk_body({"batch": {}}, variations.fields, variations.variations[:1], "")
        groups = first["batch"]["data"]
    return Recipe(
        None, groups, settings.get("board"), bool(settings.get("attach_workflow", True)),
        bool(settings.get("sync", True)), LocalImages(), uploaded,
        stored=dict(meta["bodies"]), stored_uploads=dict(settings.get("uploads") or {}),
        workflow=None if variations.given else meta["workflow"],
    )
